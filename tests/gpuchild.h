/*
 * gpuchild.h - for the tests that load the GPU plugin (test_gpu.c,
 * test_gpu_manager.c): the loader loads once per process, from the
 * TOPICD_GPU_PLUGIN it sees then, so each such test runs its probe in a
 * forked child with the variable set as it needs; and the stand-in plugins
 * `make test` builds (tests/gpu/fake_plugin.c).
 * Static functions, so that each test file includes what it uses.
 */
#ifndef TM_TESTS_GPUCHILD_H
#define TM_TESTS_GPUCHILD_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpu/gpu.h"
#include "harness.h"

/* Runs fn(out) in a forked child with TOPICD_GPU_PLUGIN = plugin (NULL:
 * unset) and copies its out (size bytes) back. Returns 0 when the child
 * finished. */
__attribute__((unused)) static int tm_gpuchild_run(const char *plugin, void (*fn)(void *out),
                                                   void *out, size_t size)
{
    int fds[2], status = 0;
    pid_t pid;
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* Earlier tests (a "gpu" fit) may have run the loader in the parent. */
        tm__gpu_loader_forget();
        close(fds[0]);
        if (plugin)
            setenv("TOPICD_GPU_PLUGIN", plugin, 1);
        else
            unsetenv("TOPICD_GPU_PLUGIN");
        fn(out);
        _exit(write(fds[1], out, size) == (ssize_t)size ? 0 : 2);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], out, size);
    close(fds[0]);
    waitpid(pid, &status, 0);
    return got == (ssize_t)size && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The stand-in plugin `name` (fake_gpu_plugin.so, fake_gpu_plugin_abi0.so)
 * of this build, or NULL when it was not built. Static buffer. */
__attribute__((unused)) static const char *tm_gpuchild_fake_plugin(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/tests/%s", tm_test_bindir(), name);
    return access(path, R_OK) == 0 ? path : NULL;
}

#endif
