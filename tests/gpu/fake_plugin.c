/*
 * fake_plugin.c - a stand-in for libtopicd_cuda.so with the same entry point
 * and ABI, and one pretend 16 GiB device, so that CI (no GPU) can drive the
 * loader's success path and the GPU manager's real adapter. Built as
 * $(B)/tests/fake_gpu_plugin.so. Its backend only creates and destroys
 * contexts and answers the size queries; no fit runs on it.
 * Built with -DFAKE_ABI=n it claims ABI n, to test the mismatch check.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/plugin.h"

#ifndef FAKE_ABI
#define FAKE_ABI TM_GPU_PLUGIN_ABI
#endif

/* Declared here: the entry point is this file's only export. */
const struct tm_gpu_plugin *tm_gpu_plugin_entry(int abi);

static tm_status fake_create(const struct tm_backend_config *cfg, void **ctx, char *err)
{
    int *c;
    if (cfg->device != 0) {
        if (err)
            snprintf(err, TM_ERR_SIZE, "fake: no GPU %d", cfg->device);
        return TM_ENODEV;
    }
    c = malloc(sizeof(*c));
    if (!c)
        return TM_ENOMEM;
    *c = cfg->dtype == TM_DTYPE_FLOAT64 ? 8 : 4;
    *ctx = c;
    return TM_OK;
}

static void fake_destroy(void *ctx)
{
    free(ctx);
}

static size_t fake_elem_size(void *ctx)
{
    return (size_t) * (int *)ctx;
}

static size_t fake_mat_bytes(enum tm_dtype dtype, int64_t rows, int64_t cols)
{
    return (size_t)rows * (size_t)cols * (dtype == TM_DTYPE_FLOAT64 ? 8 : 4);
}

static size_t fake_sparse_bytes(enum tm_dtype dtype, int64_t rows, int64_t cols, int64_t nnz,
                                int64_t k)
{
    size_t es = dtype == TM_DTYPE_FLOAT64 ? 8 : 4;
    (void)k;
    return (size_t)(rows + cols + 2) * 4 + (size_t)nnz * 2 * (4 + es);
}

static const struct tm_backend_ops fake_ops = {
    .name = "fake-cuda",
    .create = fake_create,
    .destroy = fake_destroy,
    .elem_size = fake_elem_size,
    .mat_bytes = fake_mat_bytes,
    .sparse_bytes = fake_sparse_bytes,
};

static tm_status fake_devices(struct tm_gpu_device_desc *out, int max, int *n, char *reason)
{
    (void)reason;
    *n = 0;
    if (max < 1)
        return TM_OK;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "Fake H200");
    out->cc_major = 9;
    out->multiprocessors = 132;
    out->total_bytes = (int64_t)16 << 30;
    out->free_bytes = (int64_t)15 << 30;
    *n = 1;
    return TM_OK;
}

static tm_status fake_mem_info(int ordinal, int64_t *free_bytes, int64_t *total_bytes, char *err)
{
    if (ordinal != 0) {
        if (err)
            snprintf(err, TM_ERR_SIZE, "fake: no GPU %d", ordinal);
        return TM_ENODEV;
    }
    *free_bytes = (int64_t)15 << 30;
    *total_bytes = (int64_t)16 << 30;
    return TM_OK;
}

static void fake_versions(int *runtime, int *driver)
{
    *runtime = 13000;
    *driver = 13000;
}

static const struct tm_gpu_plugin fake_plugin = {
    FAKE_ABI, &fake_ops, fake_devices, fake_mem_info, fake_versions,
};

const struct tm_gpu_plugin *tm_gpu_plugin_entry(int abi)
{
    (void)abi; /* answers any ABI: the loader must check the table's own */
    return &fake_plugin;
}
