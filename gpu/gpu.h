/*
 * gpu.h - the GPU backend as the rest of topicd finds it: loads the CUDA
 * plugin (libtopicd_cuda.so) once, with dlopen, and answers device queries.
 * core/ never calls it: a caller that wants a fit on the GPU gets the
 * backend from tm_gpu_load and hands it to tm_fit (core/fit.h), as
 * server/'s GPU manager does (which also uses the calls below for GET
 * /v1/info and admission control) and `topicd fit` (server/cli.c).
 *
 * The plugin is searched, first match wins, at:
 *   $TOPICD_GPU_PLUGIN (a file path),
 *   the directory of /proc/self/exe,
 *   ../lib/topicd relative to that directory (make install's layout).
 * Thread-safety: all functions are thread-safe; the plugin is loaded once,
 * on the first call, and never unloaded.
 */
#ifndef TM_GPU_GPU_H
#define TM_GPU_GPU_H

#include <stdint.h>

#include "core/numerics/backend.h"
#include "gpu/plugin.h"

/*
 * The CUDA backend's ops when the plugin loads and sees at least one device;
 * NULL otherwise, with the reason in reason (NULL or TM_ERR_SIZE bytes), e.g.
 * "libtopicd_cuda.so not found (looked in ...)", "CUDA driver not found",
 * "no CUDA-capable device is detected". The answer is computed once.
 */
const struct tm_backend_ops *tm_gpu_load(char *reason);

/* The usable devices (up to max); *n == 0 and reason set when none. */
tm_status tm_gpu_devices(struct tm_gpu_device_desc *out, int max, int *n, char *reason);

/* Free and total memory of device ordinal (cudaMemGetInfo). TM_ENODEV when
 * there is no GPU backend. */
tm_status tm_gpu_mem_info(int ordinal, int64_t *free_bytes, int64_t *total_bytes, char *err);

/* Why tm_gpu_load() returns NULL ("" when it does not): static storage,
 * valid for the life of the process. */
const char *tm_gpu_reason(void);

/* For tests only, in a freshly forked (so single-threaded) child: forgets
 * what an earlier call in the parent loaded, so the next call searches again
 * with the child's environment. The parent's dlopen handle stays open. */
void tm__gpu_loader_forget(void);

/* The plugin's path once loaded, else "". Static storage. */
const char *tm_gpu_plugin_path(void);

#endif
