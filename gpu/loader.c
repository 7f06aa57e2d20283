/*
 * loader.c - finds and dlopen()s the CUDA plugin, once, and answers gpu.h's
 * calls from it. Always built: without the plugin (make GPU=0, no nvcc, or a
 * CPU-only machine) every call reports the GPU unavailable with the reason,
 * and nothing CUDA is linked into topicd.
 */
#include "gpu/gpu.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/numerics/backend.h"
#include "core/status.h"

#define PLUGIN_NAME "libtopicd_cuda.so"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const struct tm_gpu_plugin *plugin; /* NULL when not loaded */
static int n_usable;                       /* devices seen at load time */
static char load_reason[TM_ERR_SIZE];      /* why plugin or devices are missing */
static char plugin_path[PATH_MAX];
/* Loaded once and never dlclose'd: contexts and the CUDA runtime live until
 * exit, and the driver would be loaded by the plugin anyway. */
static void *plugin_handle, *driver_handle;

/* Directory of the running executable into dir (size bytes); 0 on success. */
static int exe_dir(char *dir, size_t size)
{
    ssize_t len = readlink("/proc/self/exe", dir, size - 1);
    char *slash;
    if (len <= 0 || (size_t)len >= size - 1)
        return -1;
    dir[len] = '\0';
    slash = strrchr(dir, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

/*
 * Tries one candidate path. Returns 1 when loaded (plugin set), 0 when the
 * file does not exist, -1 when it exists but cannot be used (reason set: the
 * dynamic linker's message names the missing CUDA library, if any).
 */
static int try_path(const char *path)
{
    void *handle;
    tm_gpu_plugin_entry_fn entry;
    const struct tm_gpu_plugin *p;

    if (access(path, F_OK) != 0)
        return 0;
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *e = dlerror();
        snprintf(load_reason, sizeof(load_reason), "cannot load GPU plugin: %.220s", e ? e : path);
        return -1;
    }
    *(void **)&entry = dlsym(handle, TM_GPU_PLUGIN_ENTRY);
    if (!entry) {
        snprintf(load_reason, sizeof(load_reason), "%.200s has no %s", path, TM_GPU_PLUGIN_ENTRY);
        dlclose(handle);
        return -1;
    }
    p = entry(TM_GPU_PLUGIN_ABI);
    if (!p || p->abi != TM_GPU_PLUGIN_ABI || !p->ops || !p->devices || !p->mem_info) {
        snprintf(load_reason, sizeof(load_reason),
                 "%.160s was built for another topicd (plugin ABI mismatch, want %d)", path,
                 TM_GPU_PLUGIN_ABI);
        dlclose(handle);
        return -1;
    }
    plugin = p;
    plugin_handle = handle;
    if (strlen(path) < sizeof(plugin_path))
        strcpy(plugin_path, path);
    return 1;
}

/* Whether the CUDA driver library can be loaded; it stays loaded if so. */
static int driver_present(void)
{
    driver_handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    return driver_handle != NULL;
}

static void load(void)
{
    char dir[PATH_MAX], cand[3][PATH_MAX + 32];
    int n_cand = 0, i, r = 0, failed = 0;
    const char *env = getenv("TOPICD_GPU_PLUGIN");
    char looked[TM_ERR_SIZE] = "";

    if (env && env[0]) {
        snprintf(cand[n_cand++], sizeof(cand[0]), "%s", env);
    } else if (!driver_present()) {
        /* Loading the plugin maps cuBLAS, cuSPARSE and cuSOLVER (about
         * 190 MB resident) only to learn that there is no driver: ask the
         * dynamic linker for the driver first. A plugin named explicitly is
         * loaded as it is (a test double needs no driver). */
        snprintf(load_reason, sizeof(load_reason),
                 "no NVIDIA driver on this machine (libcuda.so.1 not found)");
        return;
    }
    if (exe_dir(dir, sizeof(dir)) == 0) {
        snprintf(cand[n_cand++], sizeof(cand[0]), "%s/%s", dir, PLUGIN_NAME);
        snprintf(cand[n_cand++], sizeof(cand[0]), "%s/../lib/topicd/%s", dir, PLUGIN_NAME);
    }
    for (i = 0; i < n_cand; i++) {
        r = try_path(cand[i]);
        if (r == 1)
            break;
        if (r < 0) {
            failed = 1;
            /* A plugin named explicitly that fails is the answer; otherwise
             * keep looking, but keep the first failure as the reason. */
            if (i == 0 && env && env[0])
                break;
        }
        if (strlen(looked) + strlen(cand[i]) + 3 < sizeof(looked)) {
            if (looked[0])
                strcat(looked, ", ");
            strcat(looked, cand[i]);
        }
    }
    if (!plugin) {
        if (!failed)
            snprintf(load_reason, sizeof(load_reason),
                     "GPU plugin not found (built with GPU=0 or without nvcc?); looked for %.180s",
                     looked[0] ? looked : "nowhere: /proc/self/exe unreadable");
        return;
    }
    {
        struct tm_gpu_device_desc d;
        int n = 0;
        char why[TM_ERR_SIZE] = "";
        if (plugin->devices(&d, 1, &n, why) != TM_OK || n <= 0) {
            snprintf(load_reason, sizeof(load_reason), "%.250s",
                     why[0] ? why : "no CUDA-capable device is detected");
            n = 0;
        }
        n_usable = n;
    }
}

void tm__gpu_loader_forget(void)
{
    static const pthread_once_t fresh = PTHREAD_ONCE_INIT;
    memcpy(&load_once, &fresh, sizeof(load_once));
    plugin = NULL;
    n_usable = 0;
    load_reason[0] = '\0';
    plugin_path[0] = '\0';
}

const struct tm_backend_ops *tm_gpu_load(char *reason)
{
    pthread_once(&load_once, load);
    if (plugin && n_usable > 0)
        return plugin->ops;
    if (reason)
        snprintf(reason, TM_ERR_SIZE, "%.250s", load_reason);
    return NULL;
}

tm_status tm_gpu_devices(struct tm_gpu_device_desc *out, int max, int *n, char *reason)
{
    *n = 0;
    pthread_once(&load_once, load);
    if (!plugin) {
        if (reason)
            snprintf(reason, TM_ERR_SIZE, "%.250s", load_reason);
        return TM_ENODEV;
    }
    return plugin->devices(out, max, n, reason);
}

tm_status tm_gpu_mem_info(int ordinal, int64_t *free_bytes, int64_t *total_bytes, char *err)
{
    pthread_once(&load_once, load);
    if (!plugin)
        return tm_errf(err, TM_ENODEV, "%.250s", load_reason);
    return plugin->mem_info(ordinal, free_bytes, total_bytes, err);
}

const char *tm_gpu_plugin_path(void)
{
    pthread_once(&load_once, load);
    return plugin_path;
}

const char *tm_gpu_reason(void)
{
    pthread_once(&load_once, load);
    return plugin && n_usable > 0 ? "" : load_reason;
}
