/* cpus.c - the CPUs this process may use (see cpus.h). */
#include "cpus.h"

#include <sched.h>
#include <stdio.h>
#include <unistd.h>

/* Reads two numbers ("%lld %lld", or one) from path; the count read. */
static int read_pair(const char *path, char *first, size_t size, long long *second)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char fmt[32];
    snprintf(fmt, sizeof(fmt), "%%%zus %%lld", size - 1);
    int n = fscanf(f, fmt, first, second);
    fclose(f);
    return n < 0 ? 0 : n;
}

static int ceil_div(long long quota, long long period)
{
    if (quota <= 0 || period <= 0)
        return 0;
    long long n = (quota + period - 1) / period;
    return n > 4096 ? 4096 : (int)n;
}

int tm__cpus_cgroup_quota(const char *root)
{
    char path[512], word[32];
    long long period = 0;
    /* cgroup v2: "max 100000" or "<quota> <period>". */
    snprintf(path, sizeof(path), "%s/cpu.max", root);
    if (read_pair(path, word, sizeof(word), &period) == 2) {
        long long quota = 0;
        if (sscanf(word, "%lld", &quota) != 1)
            return 0; /* "max" */
        return ceil_div(quota, period);
    }
    /* cgroup v1: -1 when unlimited. */
    static const char *const dirs[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        long long quota = 0, unused = 0;
        snprintf(path, sizeof(path), "%s/%s/cpu.cfs_quota_us", root, dirs[i]);
        if (read_pair(path, word, sizeof(word), &unused) < 1 || sscanf(word, "%lld", &quota) != 1)
            continue;
        snprintf(path, sizeof(path), "%s/%s/cpu.cfs_period_us", root, dirs[i]);
        if (read_pair(path, word, sizeof(word), &unused) < 1 || sscanf(word, "%lld", &period) != 1)
            continue;
        return ceil_div(quota, period);
    }
    return 0;
}

int tm_cpus_available(void)
{
    cpu_set_t set;
    long n = 0;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    int quota = tm__cpus_cgroup_quota("/sys/fs/cgroup");
    if (quota > 0 && quota < n)
        n = quota;
    return n > 0 ? (int)n : 1;
}
