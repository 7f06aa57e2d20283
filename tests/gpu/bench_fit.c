/*
 * bench_fit.c - times one fit the way a server worker runs it: the backend
 * context (for a GPU: its stream and library handles, CUDA's own start-up)
 * is made once and warmed up on a small matrix first, then the job is timed.
 * Used by tests/gpu/bench_gpu.py; prints one JSON object.
 *
 *   bench_fit MATRIX.mtx cpu|gpu svd|nmf K [cd|mu] [float32|float64]
 *   bench_fit --probe      exit 0 and list the GPUs, or exit 3 and say why none
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/mmio.h"
#include "core/clock.h"
#include "core/csr.h"
#include "core/fit.h"
#include "core/model.h"
#include "core/numerics/backend.h"
#include "gpu/gpu.h"

static int probe(void)
{
    char reason[TM_ERR_SIZE] = "";
    struct tm_gpu_device_desc d[16];
    int n = 0;
    if (!tm_gpu_load(reason)) {
        printf("no GPU: %s\n", reason);
        return 3;
    }
    if (tm_gpu_devices(d, 16, &n, reason) != TM_OK || n == 0) {
        printf("no GPU: %s\n", reason);
        return 3;
    }
    for (int i = 0; i < n; i++)
        printf(
            "GPU %d: %s, compute capability %d.%d, %d SMs, %.1f GiB (%.1f GiB free); plugin %s\n",
            d[i].ordinal, d[i].name, d[i].cc_major, d[i].cc_minor, d[i].multiprocessors,
            (double)d[i].total_bytes / (1 << 30), (double)d[i].free_bytes / (1 << 30),
            tm_gpu_plugin_path());
    return 0;
}

static int read_file(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    *buf = malloc((size_t)n + 1);
    if (!*buf || fread(*buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return -1;
    }
    fclose(f);
    *len = (size_t)n;
    return 0;
}

/* A small dense-ish matrix for the warm-up fit (loads the kernels). */
static int warm_matrix(struct tm_csr *x)
{
    const int m = 200, n = 120, per = 30;
    if (tm_csr_init(x, m, n, (int64_t)m * per, NULL) != TM_OK)
        return -1;
    for (int i = 0; i < m; i++) {
        for (int e = 0; e < per; e++) {
            x->indices[i * per + e] = (int32_t)((e * 4 + i % 4) % n);
            x->data[i * per + e] = 0.1 + (double)((i * 31 + e * 17) % 97) / 97.0;
        }
        /* indices must increase within a row */
        for (int a = 1; a < per; a++)
            for (int b = a; b > 0 && x->indices[i * per + b - 1] > x->indices[i * per + b]; b--) {
                int32_t ti = x->indices[i * per + b];
                x->indices[i * per + b] = x->indices[i * per + b - 1];
                x->indices[i * per + b - 1] = ti;
            }
        x->indptr[i + 1] = (int64_t)(i + 1) * per;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct tm_csr x = {0}, w = {0};
    struct tm_api_error e;
    struct tm_model_params p;
    struct tm_fit_result r = {0};
    const struct tm_backend_ops *ops = NULL;
    void *ctx = NULL;
    char err[TM_ERR_SIZE] = "", *buf = NULL;
    size_t len = 0;
    double t0, t_ctx = 0.0;
    tm_status st;
    int gpu;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    if (argc == 2 && strcmp(argv[1], "--probe") == 0)
        return probe();
    if (argc < 5) {
        fprintf(stderr,
                "usage: bench_fit MATRIX.mtx cpu|gpu svd|nmf K [cd|mu] [float32|float64]\n");
        return 2;
    }
    gpu = strcmp(argv[2], "gpu") == 0;
    if (read_file(argv[1], &buf, &len) != 0) {
        fprintf(stderr, "bench_fit: cannot read %s\n", argv[1]);
        return 1;
    }
    memset(&e, 0, sizeof(e));
    if (tm_mmio_read(buf, len, &x, &e) != TM_OK) {
        fprintf(stderr, "bench_fit: %s: %s\n", argv[1], e.message);
        return 1;
    }
    free(buf);

    tm_model_params_init(&p);
    p.n_topics = atoll(argv[4]);
    p.n_threads = (int)(cpus > 0 ? cpus : 1);
    if (strcmp(argv[3], "svd") == 0) {
        p.method = TM_METHOD_TRUNCATED_SVD;
        p.seed = 0;
    } else {
        p.method = TM_METHOD_NMF;
        p.seed = 1;
        p.solver = argc > 5 && strcmp(argv[5], "mu") == 0 ? TM_NMF_MU : TM_NMF_CD;
    }
    if (argc > 6)
        p.dtype = strcmp(argv[6], "float64") == 0 ? TM_DTYPE_FLOAT64 : TM_DTYPE_FLOAT32;
    p.device = gpu ? TM_DEVICE_GPU : TM_DEVICE_CPU;

    if (gpu) {
        struct tm_backend_config cfg = {p.dtype, 0, 0};
        struct tm_model_params wp = p;
        struct tm_fit_result wr = {0};
        ops = tm_gpu_load(err);
        if (!ops) {
            printf("{\"error\": \"no GPU: %s\"}\n", err);
            return 3;
        }
        t0 = tm_clock_monotonic();
        if ((st = ops->create(&cfg, &ctx, err)) != TM_OK) {
            printf("{\"error\": \"%s\"}\n", err);
            return 1;
        }
        t_ctx = tm_clock_monotonic() - t0;
        wp = p;
        wp.n_topics = p.n_topics < 20 ? p.n_topics : 20;
        wp.max_iter = 5;
        if (warm_matrix(&w) != 0 || tm_fit(ops, ctx, &w, &wp, NULL, &wr, err) != TM_OK) {
            printf("{\"error\": \"warm-up: %s\"}\n", err);
            return 1;
        }
        tm_fit_result_release(&wr);
        tm_csr_release(&w);
    }

    t0 = tm_clock_monotonic();
    st = tm_fit(ops, ctx, &x, &p, NULL, &r, err);
    double secs = tm_clock_monotonic() - t0;
    if (st != TM_OK) {
        printf("{\"error\": \"%s: %s\"}\n", tm_status_name(st), err);
        return 1;
    }
    printf("{\"device\": \"%s\", \"seconds\": %.6f, \"seconds_init\": %.6f, "
           "\"seconds_context\": %.6f, \"error\": %.17g, \"n_iter\": %lld, \"n_documents\": %lld, "
           "\"n_features\": %lld, \"nnz\": %lld",
           r.device_used, secs, r.seconds_init, t_ctx, r.reconstruction_error, (long long)r.n_iter,
           (long long)r.n_documents, (long long)r.n_features, (long long)r.nnz);
    if (r.singular_values) {
        printf(", \"singular_values\": [");
        for (int64_t i = 0; i < r.n_topics; i++)
            printf("%s%.17g", i ? ", " : "", r.singular_values[i]);
        printf("]");
    }
    printf("}\n");
    tm_fit_result_release(&r);
    if (ctx)
        ops->destroy(ctx);
    tm_csr_release(&x);
    return 0;
}
