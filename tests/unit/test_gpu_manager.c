/*
 * test_gpu_manager.c - the GPU manager: its admission rules driven by a fake
 * device (struct tm_gpu_device_ops), then the real adapter (gpu/gpu.h) over
 * the stand-in plugin and over this machine's own GPU or its absence.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "core/model.h"
#include "core/numerics/backend.h"
#include "gpuchild.h"
#include "harness.h"
#include "server/gpu_manager.h"
#include "testalloc.h"

#define MiB ((int64_t)1 << 20)
#define GiB ((int64_t)1 << 30)

/* A fake device: memory numbers set by the test, an estimate of
 * nnz * bytes_per_nnz, and counters of the contexts made and freed. */
struct fake {
    int n_devices;
    int64_t total[2];
    int64_t free[2]; /* what "cudaMemGetInfo" answers; the test moves it */
    int64_t bytes_per_nnz;
    int fail_slot_new;
    int mem_fails; /* cudaMemGetInfo fails: a sticky error broke the context */
    int slots_made, slots_freed;
    int tokens[64];
    pthread_mutex_t lock;
};

static tm_status fake_probe(void *dev, struct tm_gpu_device_info *devs, int max, int *n,
                            char *reason)
{
    struct fake *f = dev;
    *n = f->n_devices < max ? f->n_devices : max;
    if (*n == 0)
        return tm_errf(reason, TM_ENODEV, "fake: no CUDA-capable device is detected");
    for (int i = 0; i < *n; i++) {
        devs[i].ordinal = i;
        snprintf(devs[i].name, sizeof(devs[i].name), "Fake GPU %d", i);
        devs[i].cc_major = 9;
        devs[i].total_bytes = f->total[i];
        devs[i].free_bytes = f->free[i];
    }
    return TM_OK;
}

static tm_status fake_mem_info(void *dev, int ordinal, int64_t *free_b, int64_t *total_b, char *err)
{
    struct fake *f = dev;
    if (f->mem_fails)
        return tm_errf(err, TM_EDEVICE, "fake: an illegal memory access was encountered");
    pthread_mutex_lock(&f->lock);
    *free_b = f->free[ordinal];
    *total_b = f->total[ordinal];
    pthread_mutex_unlock(&f->lock);
    return TM_OK;
}

static int64_t fake_estimate(void *dev, const struct tm_model_params *params, int64_t m, int64_t n,
                             int64_t nnz)
{
    struct fake *f = dev;
    (void)m;
    (void)n;
    if (nnz > INT32_MAX)
        return -1; /* as the CUDA backend: 32-bit indices */
    return nnz * f->bytes_per_nnz * (params->dtype == TM_DTYPE_FLOAT64 ? 2 : 1);
}

static tm_status fake_ctx_new(void *dev, int ordinal, enum tm_dtype dtype, void **ctx, char *err)
{
    struct fake *f = dev;
    if (f->fail_slot_new)
        return tm_errf(err, TM_EDEVICE, "fake: cublasCreate failed");
    f->tokens[f->slots_made % 64] = ordinal * 10 + (dtype == TM_DTYPE_FLOAT64);
    *ctx = &f->tokens[f->slots_made % 64];
    f->slots_made++;
    return TM_OK;
}

static void fake_ctx_free(void *dev, void *ctx)
{
    struct fake *f = dev;
    (void)ctx;
    f->slots_freed++;
}

static const struct tm_backend_ops fake_backend_ops = {.name = "fake"};

static const struct tm_backend_ops *fake_backend(void *dev)
{
    (void)dev;
    return &fake_backend_ops;
}

static const struct tm_gpu_device_ops fake_ops = {
    .probe = fake_probe,
    .mem_info = fake_mem_info,
    .estimate = fake_estimate,
    .ctx_new = fake_ctx_new,
    .ctx_free = fake_ctx_free,
    .backend = fake_backend,
    .name = "fake",
};

static void fake_init(struct fake *f, int n_devices)
{
    memset(f, 0, sizeof(*f));
    f->n_devices = n_devices;
    f->total[0] = f->total[1] = 16 * GiB;
    f->free[0] = f->free[1] = 15 * GiB;
    f->bytes_per_nnz = 1024; /* 1 MiB of device memory per 1024 non-zeros */
    pthread_mutex_init(&f->lock, NULL);
}

/* A job and the params it points to; fjob_init sets the pointer, so an
 * fjob is used in place and never copied. */
struct fjob {
    struct tm_model_params params;
    struct tm_gpu_job job;
};

static struct tm_gpu_job *fjob_init(struct fjob *f, enum tm_device device, int64_t nnz, int64_t k)
{
    tm_model_params_init(&f->params);
    f->params.device = device;
    f->params.n_topics = k;
    f->job.params = &f->params;
    f->job.m = 1000;
    f->job.n = 1000;
    f->job.nnz = nnz;
    return &f->job;
}

/* What every test of the fake device sets up: the device, the manager's
 * configuration, the manager made from both, a job, and the buffers the
 * calls fill. fx_init puts in the defaults; a test changes f and cfg as it
 * needs, then fx_start makes the manager. fx_teardown frees what fx_start
 * made and leaves f readable (its counters). */
struct fx {
    struct fake f;
    struct tm_gpu_manager_config cfg;
    struct tm_gpu_manager *mgr;
    struct fjob fj;
    struct tm_gpu_info info;
    char err[TM_ERR_SIZE];
};

static void fx_init(struct fx *x, int n_devices)
{
    memset(x, 0, sizeof(*x));
    fake_init(&x->f, n_devices);
    tm_gpu_manager_config_init(&x->cfg);
}

/* 0, or -1 with the reason on stderr. */
static int fx_start(struct fx *x)
{
    if (tm_gpu_manager_new(&x->cfg, &fake_ops, &x->f, &x->mgr, x->err) == TM_OK)
        return 0;
    fprintf(stderr, "  tm_gpu_manager_new: %s\n", x->err);
    return -1;
}

/* fx_init and fx_start, for the tests that keep the defaults. */
static int fx_setup(struct fx *x, int n_devices)
{
    fx_init(x, n_devices);
    return fx_start(x);
}

static void fx_teardown(struct fx *x)
{
    tm_gpu_manager_free(x->mgr);
    x->mgr = NULL;
    pthread_mutex_destroy(&x->f.lock);
}

static const struct tm_gpu_wait no_wait = {.timeout_ms = 0};

TM_TEST(gpu_manager_no_device)
{
    struct fx x;
    struct tm_gpu_lease lease;
    REQUIRE(fx_setup(&x, 0) == 0);

    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_GPU, 1 << 20, 20);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &lease, x.err), TM_ENODEV);
    CHECK(strstr(x.err, "no GPU is usable") != NULL);
    CHECK(strstr(x.err, "no CUDA-capable device") != NULL);
    CHECK_INT_EQ(lease.on_gpu, 0);

    x.fj.params.device = TM_DEVICE_AUTO;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &lease, x.err), TM_OK);
    CHECK_INT_EQ(lease.on_gpu, 0);
    CHECK(lease.backend_ctx == NULL);
    CHECK_STR_EQ(lease.device_name, "cpu");
    CHECK_STR_EQ(lease.why_cpu, "no GPU");
    tm_gpu_manager_release(x.mgr, &lease, TM_OK);

    x.fj.params.device = TM_DEVICE_CPU;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &lease, x.err), TM_OK);
    CHECK_INT_EQ(lease.on_gpu, 0);

    tm_gpu_manager_info(x.mgr, &x.info);
    CHECK_INT_EQ(x.info.available, 0);
    CHECK_INT_EQ(x.info.n_devices, 0);
    CHECK_STR_EQ(x.info.backend, "none");
    CHECK(strstr(x.info.reason, "no CUDA-capable device") != NULL);
    CHECK_INT_EQ(x.info.auto_on_cpu, 1);
    fx_teardown(&x);
}

TM_TEST(gpu_manager_disabled_by_config)
{
    struct fx x;
    struct tm_gpu_lease lease;
    fx_init(&x, 1);
    x.cfg.disabled = 1;
    REQUIRE(fx_start(&x) == 0);
    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_GPU, 1 << 20, 20);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &lease, x.err), TM_ENODEV);
    CHECK(strstr(x.err, "disabled") != NULL);
    fx_teardown(&x);
}

TM_TEST(gpu_manager_bad_config)
{
    struct fx x;
    fx_init(&x, 1);
    x.cfg.slots_per_device = 0;
    x.mgr = (struct tm_gpu_manager *)&x.f; /* must come back NULL */
    CHECK_INT_EQ(tm_gpu_manager_new(&x.cfg, &fake_ops, &x.f, &x.mgr, x.err), TM_ERANGE);
    CHECK(x.mgr == NULL);
    CHECK(strstr(x.err, "slots") != NULL);
    x.mgr = NULL;
    fx_teardown(&x);
}

TM_TEST(gpu_manager_auto_small_job_stays_on_cpu)
{
    struct fx x;
    struct tm_gpu_lease lease;
    fx_init(&x, 1);
    x.cfg.auto_min_work = 1e6;
    REQUIRE(fx_start(&x) == 0);

    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_AUTO, 10000, 5); /* 5e4 < 1e6 */
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &lease, x.err), TM_OK);
    CHECK_INT_EQ(lease.on_gpu, 0);
    CHECK_STR_EQ(lease.why_cpu, "job too small to gain from the GPU");
    CHECK_INT_EQ(tm_gpu_manager_cpu_dtype(job, &lease), TM_DTYPE_AUTO); /* the CPU's own */

    /* The same small job asked explicitly for the GPU gets it. */
    x.fj.params.device = TM_DEVICE_GPU;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &lease, x.err), TM_OK);
    CHECK_INT_EQ(lease.on_gpu, 1);
    CHECK(lease.backend_ctx != NULL);
    CHECK_STR_EQ(lease.device_name, "fake");
    tm_gpu_manager_release(x.mgr, &lease, TM_OK);

    job = fjob_init(&x.fj, TM_DEVICE_AUTO, 100000, 20); /* 2e6 >= 1e6 */
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &lease, x.err), TM_OK);
    CHECK_INT_EQ(lease.on_gpu, 1);
    CHECK(lease.why_cpu == NULL);
    tm_gpu_manager_release(x.mgr, &lease, TM_OK);
    fx_teardown(&x);
}

TM_TEST(gpu_manager_never_fits)
{
    struct fx x;
    struct tm_gpu_lease lease;
    REQUIRE(fx_setup(&x, 1) == 0);

    /* 16 GiB of estimate on a 16 GiB device with a 512 MiB reserve. */
    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_GPU, 16 * 1024 * 1024, 20);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &lease, x.err), TM_ETOOBIG);
    CHECK(strstr(x.err, "GPU memory") != NULL);
    CHECK_INT_EQ(lease.on_gpu, 0);

    x.fj.params.device = TM_DEVICE_AUTO;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &lease, x.err), TM_OK);
    CHECK_INT_EQ(lease.on_gpu, 0);
    CHECK_STR_EQ(lease.why_cpu, "job does not fit in GPU memory");
    fx_teardown(&x);
}

/* A corpus the backend cannot hold at all (estimate < 0) is refused before
 * it reaches the device: "gpu" fails saying why, "auto" runs on the CPU. */
TM_TEST(gpu_manager_corpus_beyond_the_backend)
{
    struct fx x;
    struct tm_gpu_lease lease;
    REQUIRE(fx_setup(&x, 1) == 0);
    x.f.bytes_per_nnz = 0; /* it would fit in memory: only the index width refuses it */
    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_GPU, (int64_t)INT32_MAX + 1, 20);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &lease, x.err), TM_ETOOBIG);
    CHECK(strstr(x.err, "32-bit") != NULL);
    CHECK_INT_EQ(lease.on_gpu, 0);

    x.fj.params.device = TM_DEVICE_AUTO;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &lease, x.err), TM_OK);
    CHECK_INT_EQ(lease.on_gpu, 0);
    CHECK_STR_EQ(lease.why_cpu, "corpus too large for the GPU backend");
    fx_teardown(&x);
}

TM_TEST(gpu_manager_slots_are_limited_and_reused)
{
    struct fx x;
    struct tm_gpu_lease a, b, c;
    fx_init(&x, 1);
    x.cfg.slots_per_device = 2;
    REQUIRE(fx_start(&x) == 0);

    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_GPU, 1024 * 100, 20); /* 100 MiB */
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_OK);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &b, x.err), TM_OK);
    CHECK_INT_EQ(a.on_gpu, 1);
    CHECK_INT_EQ(b.on_gpu, 1);
    CHECK(a.slot != b.slot);
    CHECK(a.backend_ctx != b.backend_ctx);

    /* Third "gpu" job: no slot, no waiting allowed. */
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &c, x.err), TM_EBUSY);
    CHECK(strstr(x.err, "timed out") != NULL);
    /* Third "auto" job: the CPU, at once. */
    x.fj.params.device = TM_DEVICE_AUTO;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &c, x.err), TM_OK);
    CHECK_INT_EQ(c.on_gpu, 0);
    CHECK_STR_EQ(c.why_cpu, "GPU busy");
    CHECK_INT_EQ(tm_gpu_manager_cpu_dtype(job, &c), TM_DTYPE_FLOAT32); /* bound for the GPU */

    tm_gpu_manager_info(x.mgr, &x.info);
    CHECK_INT_EQ(x.info.available, 1);
    CHECK_INT_EQ(x.info.n_devices, 1);
    CHECK_INT_EQ(x.info.slots_total, 2);
    CHECK_INT_EQ(x.info.jobs_running, 2);
    CHECK_INT_EQ(x.info.devices[0].slots_busy, 2);
    CHECK_INT_EQ(x.info.devices[0].promised_bytes, 200 * MiB);
    CHECK_STR_EQ(x.info.devices[0].name, "Fake GPU 0");
    CHECK_STR_EQ(x.info.backend, "fake");

    void *first = a.backend_ctx;
    tm_gpu_manager_release(x.mgr, &a, TM_OK);
    tm_gpu_manager_release(x.mgr, &b, TM_OK);
    CHECK_INT_EQ(x.f.slots_made, 2);

    /* Contexts are made once per slot and reused by later jobs. */
    x.fj.params.device = TM_DEVICE_GPU;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_OK);
    CHECK(a.backend_ctx == first);
    CHECK_INT_EQ(x.f.slots_made, 2);
    tm_gpu_manager_release(x.mgr, &a, TM_OK);

    tm_gpu_manager_info(x.mgr, &x.info);
    CHECK_INT_EQ(x.info.jobs_running, 0);
    CHECK_INT_EQ(x.info.jobs_started, 3);
    CHECK_INT_EQ(x.info.auto_on_cpu, 1);
    CHECK_INT_EQ(x.info.devices[0].promised_bytes, 0);
    fx_teardown(&x);
    CHECK_INT_EQ(x.f.slots_freed, 2);
}

TM_TEST(gpu_manager_memory_admission)
{
    struct fx x;
    struct tm_gpu_lease a, b;
    fx_init(&x, 1);
    x.f.total[0] = 4 * GiB;
    x.f.free[0] = 4 * GiB;
    x.cfg.slots_per_device = 4;
    x.cfg.reserve_bytes = 512 * MiB;
    REQUIRE(fx_start(&x) == 0);

    /* 2 GiB each: the first fits, the second would pass the promise limit
     * (4 GiB - 512 MiB - 2 GiB promised) although the fake's free memory
     * has not moved: promised memory counts before it is allocated. */
    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_GPU, 2 * 1024 * 1024, 20);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_OK);
    CHECK_INT_EQ(a.on_gpu, 1);
    CHECK_INT_EQ(a.bytes, 2 * GiB);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &b, x.err), TM_EBUSY);
    x.fj.params.device = TM_DEVICE_AUTO;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &b, x.err), TM_OK);
    CHECK_INT_EQ(b.on_gpu, 0);
    tm_gpu_manager_release(x.mgr, &a, TM_OK);

    /* Memory held by another process counts too (cudaMemGetInfo). */
    x.f.free[0] = 2 * GiB;
    x.fj.params.device = TM_DEVICE_GPU;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_EBUSY);
    x.f.free[0] = 3 * GiB;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_OK);
    tm_gpu_manager_release(x.mgr, &a, TM_OK);

    /* float64 doubles the fake's estimate: 4 GiB cannot fit 3.5 GiB usable. */
    x.fj.params.dtype = TM_DTYPE_FLOAT64;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_ETOOBIG);
    fx_teardown(&x);
}

TM_TEST(gpu_manager_picks_device_with_room)
{
    struct fx x;
    struct tm_gpu_lease a, b;
    fx_init(&x, 2);
    x.f.free[0] = 2 * GiB;
    x.cfg.slots_per_device = 1;
    REQUIRE(fx_start(&x) == 0);
    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_GPU, 1024 * 1024, 20); /* 1 GiB */
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_OK);
    CHECK_INT_EQ(a.ordinal, 1); /* more room there */
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &b, x.err), TM_OK);
    CHECK_INT_EQ(b.ordinal, 0); /* device 1's only slot is taken */
    tm_gpu_manager_info(x.mgr, &x.info);
    CHECK_INT_EQ(x.info.n_devices, 2);
    CHECK_INT_EQ(x.info.slots_total, 2);
    CHECK_INT_EQ(x.info.jobs_running, 2);
    tm_gpu_manager_release(x.mgr, &a, TM_OK);
    tm_gpu_manager_release(x.mgr, &b, TM_OK);
    fx_teardown(&x);
}

TM_TEST(gpu_manager_device_failure)
{
    struct fx x;
    struct tm_gpu_lease a;
    fx_init(&x, 1);
    x.cfg.slots_per_device = 1;
    REQUIRE(fx_start(&x) == 0);

    /* A failed fit on the GPU: its slot context is thrown away and made
     * again for the next job; "auto" retries on the CPU, "gpu" does not. */
    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_AUTO, 1024 * 1024, 20);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &a, x.err), TM_OK);
    REQUIRE(a.on_gpu == 1);
    tm_gpu_manager_release(x.mgr, &a, TM_EDEVICE);
    CHECK_INT_EQ(x.f.slots_freed, 1);
    CHECK_INT_EQ(tm_gpu_manager_retry_on_cpu(x.mgr, job, &a, TM_EDEVICE), 1);
    /* the retry keeps the GPU's dtype: AUTO is float32 there */
    CHECK_INT_EQ(tm_gpu_manager_cpu_dtype(job, &a), TM_DTYPE_FLOAT32);
    x.fj.params.dtype = TM_DTYPE_FLOAT64;
    CHECK_INT_EQ(tm_gpu_manager_cpu_dtype(job, &a), TM_DTYPE_FLOAT64);
    x.fj.params.dtype = TM_DTYPE_AUTO;
    CHECK_INT_EQ(tm_gpu_manager_retry_on_cpu(x.mgr, job, &a, TM_EINVAL), 0);
    CHECK_INT_EQ(tm_gpu_manager_retry_on_cpu(x.mgr, job, &a, TM_ECANCELLED), 0);
    x.fj.params.device = TM_DEVICE_GPU;
    CHECK_INT_EQ(tm_gpu_manager_retry_on_cpu(x.mgr, job, &a, TM_EDEVICE), 0);

    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_OK);
    CHECK_INT_EQ(x.f.slots_made, 2);
    tm_gpu_manager_release(x.mgr, &a, TM_OK);

    tm_gpu_manager_info(x.mgr, &x.info);
    CHECK_INT_EQ(x.info.jobs_failed, 1);
    CHECK_INT_EQ(x.info.auto_fallbacks, 1);
    fx_teardown(&x);
    CHECK_INT_EQ(x.f.slots_freed, 2);
}

TM_TEST(gpu_manager_slot_setup_failure)
{
    struct fx x;
    struct tm_gpu_lease a;
    fx_init(&x, 1);
    x.f.fail_slot_new = 1;
    REQUIRE(fx_start(&x) == 0);
    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_GPU, 1024 * 1024, 20);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &a, x.err), TM_EDEVICE);
    CHECK(strstr(x.err, "cublasCreate failed") != NULL);
    CHECK_INT_EQ(a.on_gpu, 0);
    x.fj.params.device = TM_DEVICE_AUTO;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &a, x.err), TM_OK);
    CHECK_INT_EQ(a.on_gpu, 0);
    CHECK_STR_EQ(a.why_cpu, "GPU set-up failed");
    tm_gpu_manager_info(x.mgr, &x.info);
    CHECK_INT_EQ(x.info.jobs_running, 0);
    fx_teardown(&x);
}

struct waiter {
    struct tm_gpu_manager *mgr;
    struct fjob fj;
    struct tm_gpu_job *job;
    struct tm_gpu_wait wait;
    struct tm_gpu_lease lease;
    tm_status st;
    char err[TM_ERR_SIZE];
    atomic_int cancel;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    w->st = tm_gpu_manager_acquire(w->mgr, w->job, &w->wait, &w->lease, w->err);
    return NULL;
}

static int waiter_cancelled(void *ctx)
{
    return atomic_load(&((struct waiter *)ctx)->cancel);
}

static int waiting(struct tm_gpu_manager *mgr)
{
    struct tm_gpu_info info;
    for (int i = 0; i < 500; i++) {
        tm_gpu_manager_info(mgr, &info);
        if (info.jobs_waiting > 0)
            return 1;
        usleep(2000);
    }
    return 0;
}

TM_TEST(gpu_manager_gpu_job_waits_for_a_slot)
{
    struct fx x;
    struct tm_gpu_lease a;
    struct waiter w;
    pthread_t th;
    fx_init(&x, 1);
    x.cfg.slots_per_device = 1;
    REQUIRE(fx_start(&x) == 0);
    memset(&w, 0, sizeof(w));
    w.mgr = x.mgr;
    w.job = fjob_init(&w.fj, TM_DEVICE_GPU, 1024, 20);
    w.wait.timeout_ms = -1;

    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, w.job, &no_wait, &a, x.err), TM_OK);
    REQUIRE(pthread_create(&th, NULL, waiter_main, &w) == 0);
    CHECK(waiting(x.mgr));
    tm_gpu_manager_release(x.mgr, &a, TM_OK);
    pthread_join(th, NULL);
    CHECK_INT_EQ(w.st, TM_OK);
    CHECK_INT_EQ(w.lease.on_gpu, 1);
    tm_gpu_manager_release(x.mgr, &w.lease, TM_OK);

    /* A waiter can be cancelled. */
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, w.job, &no_wait, &a, x.err), TM_OK);
    w.wait.cancelled = waiter_cancelled;
    w.wait.ctx = &w;
    REQUIRE(pthread_create(&th, NULL, waiter_main, &w) == 0);
    CHECK(waiting(x.mgr));
    atomic_store(&w.cancel, 1);
    pthread_join(th, NULL);
    CHECK_INT_EQ(w.st, TM_ECANCELLED);
    CHECK_INT_EQ(w.lease.on_gpu, 0);

    /* And times out. */
    atomic_store(&w.cancel, 0);
    w.wait.timeout_ms = 50;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, w.job, &w.wait, &w.lease, w.err), TM_EBUSY);
    tm_gpu_manager_release(x.mgr, &a, TM_OK);

    tm_gpu_manager_info(x.mgr, &x.info);
    CHECK_INT_EQ(x.info.jobs_waiting, 0);
    CHECK_INT_EQ(x.info.jobs_running, 0);
    fx_teardown(&x);
}

TM_TEST(gpu_manager_allocation_failures)
{
    struct fx x;
    fx_init(&x, 2);
    for (long n = 1; n < 10; n++) {
        struct tm_gpu_manager *mgr = NULL;
        char err[TM_ERR_SIZE] = "";
        tm_testalloc_fail_at(n);
        tm_status st = tm_gpu_manager_new(&x.cfg, &fake_ops, &x.f, &mgr, err);
        long calls = tm_testalloc_calls();
        tm_gpu_manager_free(mgr);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK && calls < n)
            break;
        if (st != TM_OK)
            CHECK_INT_EQ(st, TM_ENOMEM);
    }
    fx_teardown(&x);
}

TM_TEST(gpu_manager_sticky_failure_disables_gpu)
{
    struct fx x;
    struct tm_gpu_lease a;
    REQUIRE(fx_setup(&x, 1) == 0);
    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_GPU, 1024 * 1024, 20);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_OK);
    REQUIRE(a.on_gpu == 1);
    x.f.mem_fails = 1;
    tm_gpu_manager_release(x.mgr, &a, TM_EDEVICE);
    tm_gpu_manager_info(x.mgr, &x.info);
    CHECK_INT_EQ(x.info.available, 0);
    CHECK(strstr(x.info.reason, "illegal memory access") != NULL);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_ENODEV);
    CHECK(strstr(x.err, "failed and is disabled") != NULL);
    x.fj.params.device = TM_DEVICE_AUTO;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &a, x.err), TM_OK);
    CHECK_INT_EQ(a.on_gpu, 0);
    fx_teardown(&x);
}

TM_TEST(gpu_manager_dtype_and_method)
{
    struct fx x;
    struct tm_gpu_lease a, b;
    fx_init(&x, 1);
    x.cfg.slots_per_device = 1;
    REQUIRE(fx_start(&x) == 0);
    struct tm_gpu_job *job = fjob_init(&x.fj, TM_DEVICE_GPU, 1024, 20);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_OK);
    REQUIRE(a.backend != NULL);
    CHECK_STR_EQ(a.backend->name, "fake");
    tm_gpu_manager_release(x.mgr, &a, TM_OK);
    /* float64 gets its own context on the same slot, made once. */
    x.fj.params.dtype = TM_DTYPE_FLOAT64;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &b, x.err), TM_OK);
    CHECK(b.backend_ctx != a.backend_ctx);
    CHECK_INT_EQ(*(int *)b.backend_ctx, 1);
    tm_gpu_manager_release(x.mgr, &b, TM_OK);
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &b, x.err), TM_OK);
    tm_gpu_manager_release(x.mgr, &b, TM_OK);
    CHECK_INT_EQ(x.f.slots_made, 2);

    /* full_svd is dense LAPACK on the host. */
    x.fj.params.method = TM_METHOD_FULL_SVD;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, &no_wait, &a, x.err), TM_EINVAL);
    CHECK(strstr(x.err, "full_svd") != NULL);
    x.fj.params.device = TM_DEVICE_AUTO;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &a, x.err), TM_OK);
    CHECK_INT_EQ(a.on_gpu, 0);
    x.fj.params.device = TM_DEVICE_CPU;
    x.fj.params.method = TM_METHOD_NMF;
    CHECK_INT_EQ(tm_gpu_manager_acquire(x.mgr, job, NULL, &a, x.err), TM_OK);
    CHECK_INT_EQ(a.on_gpu, 0);
    CHECK(a.why_cpu == NULL);
    fx_teardown(&x);
    CHECK_INT_EQ(x.f.slots_freed, 2);
}

/* ------------------------------------------------------ the real adapter */

struct manager_seen {
    int available, n_devices, on_gpu, slots_total, running_during, running_after;
    int64_t promised, estimate_ok;
    tm_status st;
    char backend[32], lease_backend[32], dev_name[96], err[TM_ERR_SIZE];
};

/* The GPU manager over the real adapter (gpu/gpu.h) and the fake plugin. */
static void manage_fake(void *arg)
{
    struct manager_seen *m = arg;
    struct tm_gpu_manager_config cfg;
    struct tm_gpu_manager *mgr = NULL;
    struct tm_gpu_info info;
    struct tm_gpu_lease lease;
    struct tm_model_params p;
    struct tm_gpu_job job;

    tm_gpu_manager_config_init(&cfg);
    if ((m->st = tm_gpu_manager_new(&cfg, NULL, NULL, &mgr, m->err)) != TM_OK)
        return;
    tm_gpu_manager_info(mgr, &info);
    m->available = info.available;
    m->n_devices = info.n_devices;
    m->slots_total = info.slots_total;
    snprintf(m->backend, sizeof(m->backend), "%s", info.backend);
    snprintf(m->dev_name, sizeof(m->dev_name), "%s", info.devices[0].name);
    tm_model_params_init(&p);
    p.device = TM_DEVICE_GPU;
    p.n_topics = 20;
    job.params = &p;
    job.m = 18846;
    job.n = 100000;
    job.nnz = 1500000;
    m->st = tm_gpu_manager_acquire(mgr, &job, NULL, &lease, m->err);
    if (m->st == TM_OK) {
        m->on_gpu = lease.on_gpu;
        m->promised = lease.bytes;
        m->estimate_ok = lease.bytes > 0 && lease.backend_ctx != NULL;
        snprintf(m->lease_backend, sizeof(m->lease_backend), "%s",
                 lease.backend ? lease.backend->name : "(none)");
        tm_gpu_manager_info(mgr, &info);
        m->running_during = info.jobs_running;
        tm_gpu_manager_release(mgr, &lease, TM_OK);
        tm_gpu_manager_info(mgr, &info);
        m->running_after = info.jobs_running;
    }
    tm_gpu_manager_free(mgr);
}

TM_TEST(gpu_manager_over_fake_plugin)
{
    const char *plugin = tm_gpuchild_fake_plugin("fake_gpu_plugin.so");
    struct manager_seen m;
    if (!plugin)
        SKIP("tests/fake_gpu_plugin.so not built (make test builds it)");
    memset(&m, 0, sizeof(m));
    REQUIRE(tm_gpuchild_run(plugin, manage_fake, &m, sizeof(m)) == 0);
    CHECK_INT_EQ(m.st, TM_OK);
    CHECK_INT_EQ(m.available, 1);
    CHECK_INT_EQ(m.n_devices, 1);
    CHECK_INT_EQ(m.slots_total, 2);
    CHECK_STR_EQ(m.backend, "fake-cuda");
    CHECK_STR_EQ(m.dev_name, "Fake H200");
    CHECK_INT_EQ(m.on_gpu, 1);
    CHECK_INT_EQ(m.estimate_ok, 1);
    CHECK_STR_EQ(m.lease_backend, "fake-cuda");
    CHECK_INT_EQ(m.running_during, 1);
    CHECK_INT_EQ(m.running_after, 0);
}

/* The real device on this machine: with no GPU (CI, development machines)
 * the manager must come up unavailable with a reason, and route jobs. */
TM_TEST(gpu_manager_real_device)
{
    struct tm_gpu_manager_config cfg;
    struct tm_gpu_manager *mgr = NULL;
    struct tm_gpu_info info;
    struct tm_gpu_lease a;
    char err[TM_ERR_SIZE] = "";
    struct fjob fj;
    struct tm_gpu_job *job = fjob_init(&fj, TM_DEVICE_AUTO, 1 << 20, 20);

    tm_gpu_manager_config_init(&cfg);
    REQUIRE(tm_gpu_manager_new(&cfg, NULL, NULL, &mgr, err) == TM_OK);
    tm_gpu_manager_info(mgr, &info);
    if (info.available) {
        /* A GPU machine checks what it can see; the no-GPU path below is
         * checked on every machine without one (CI). No skip: tests/gpu/run.sh
         * fails a GPU run in which any GPU test skipped. */
        CHECK(info.n_devices > 0);
        CHECK(info.devices[0].total_bytes > 0);
        CHECK_STR_EQ(info.backend, "cuda");
        tm_gpu_manager_free(mgr);
        return;
    }
    CHECK(info.reason[0] != '\0');
    CHECK_STR_EQ(info.backend, "none");
    CHECK_INT_EQ(tm_gpu_manager_acquire(mgr, job, NULL, &a, err), TM_OK);
    CHECK_INT_EQ(a.on_gpu, 0);
    CHECK_STR_EQ(a.why_cpu, "no GPU");
    fj.params.device = TM_DEVICE_GPU;
    CHECK_INT_EQ(tm_gpu_manager_acquire(mgr, job, NULL, &a, err), TM_ENODEV);
    char head[61];
    snprintf(head, sizeof(head), "%.60s", info.reason);
    CHECK(strstr(err, head) != NULL);
    tm_gpu_manager_free(mgr);
}
