/*
 * plugin.h - the ABI between the topicd binary (gpu/loader.c) and the CUDA
 * plugin libtopicd_cuda.so (gpu/cuda_backend.cu): the one symbol the loader
 * resolves, and the table it returns. Plain C, so both a C11 and a CUDA C++
 * translation unit include it.
 *
 * The plugin links the CUDA libraries; topicd links none of them and only
 * dlopen()s the plugin, so the same binary starts on machines with no GPU,
 * driver or CUDA libraries. Bump TM_GPU_PLUGIN_ABI whenever this file or
 * core/numerics/backend.h changes in a way that breaks an old plugin.
 * Thread-safety: the entry point and the table's functions are thread-safe.
 */
#ifndef TM_GPU_PLUGIN_H
#define TM_GPU_PLUGIN_H

#include <stdint.h>

#include "core/numerics/backend.h"
#include "core/status.h"

#define TM_GPU_PLUGIN_ABI 1
#define TM_GPU_PLUGIN_ENTRY "tm_gpu_plugin_entry"

/* One CUDA device as cudaGetDeviceProperties and cudaMemGetInfo see it. */
struct tm_gpu_device_desc {
    int ordinal;
    char name[96];
    int cc_major, cc_minor;
    int multiprocessors;
    int64_t total_bytes;
    int64_t free_bytes;
};

struct tm_gpu_plugin {
    int abi; /* TM_GPU_PLUGIN_ABI */
    const struct tm_backend_ops *ops;
    /* The devices usable now: *n == 0 with reason (TM_ERR_SIZE bytes) set when
     * there is no driver, no device, or a driver older than the runtime. */
    tm_status (*devices)(struct tm_gpu_device_desc *out, int max, int *n, char *reason);
    /* cudaMemGetInfo on device ordinal. */
    tm_status (*mem_info)(int ordinal, int64_t *free_bytes, int64_t *total_bytes, char *err);
    /* CUDA runtime and driver versions (1000 * major + 10 * minor). */
    void (*versions)(int *runtime, int *driver);
};

#ifdef __cplusplus
extern "C" {
#endif
/* Returns the plugin's table when abi matches the plugin's, else NULL. */
typedef const struct tm_gpu_plugin *(*tm_gpu_plugin_entry_fn)(int abi);
#ifdef __cplusplus
}
#endif

#endif
