/* test_cpus.c - the CPUs a process may use: affinity and cgroup quotas. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "server/cpus.h"

static void put(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

TM_TEST(cpus_cgroup_v2_quota)
{
    char dir[] = "/tmp/topicd-cpus-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    CHECK_INT_EQ(tm__cpus_cgroup_quota(dir), 0); /* no file: no quota */
    put(dir, "cpu.max", "max 100000\n");
    CHECK_INT_EQ(tm__cpus_cgroup_quota(dir), 0);
    put(dir, "cpu.max", "50000 100000\n"); /* --cpus 0.5 */
    CHECK_INT_EQ(tm__cpus_cgroup_quota(dir), 1);
    put(dir, "cpu.max", "150000 100000\n"); /* --cpus 1.5: rounded up */
    CHECK_INT_EQ(tm__cpus_cgroup_quota(dir), 2);
    put(dir, "cpu.max", "400000 100000\n");
    CHECK_INT_EQ(tm__cpus_cgroup_quota(dir), 4);
    char path[512];
    snprintf(path, sizeof(path), "%s/cpu.max", dir);
    unlink(path);
    rmdir(dir);
}

TM_TEST(cpus_cgroup_v1_quota)
{
    char dir[] = "/tmp/topicd-cpus-XXXXXX", sub[600];
    REQUIRE(mkdtemp(dir) != NULL);
    snprintf(sub, sizeof(sub), "%s/cpu,cpuacct", dir);
    REQUIRE(mkdir(sub, 0700) == 0);
    put(sub, "cpu.cfs_quota_us", "-1\n");
    put(sub, "cpu.cfs_period_us", "100000\n");
    CHECK_INT_EQ(tm__cpus_cgroup_quota(dir), 0); /* unlimited */
    put(sub, "cpu.cfs_quota_us", "200000\n");
    CHECK_INT_EQ(tm__cpus_cgroup_quota(dir), 2);
    char path[700];
    snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", sub);
    unlink(path);
    snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", sub);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

/* A process pinned to one CPU may use one, however many the host has. */
TM_TEST(cpus_follow_the_affinity_mask)
{
    CHECK(tm_cpus_available() >= 1);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        if (sched_setaffinity(0, sizeof(one), &one))
            _exit(2);
        _exit(tm_cpus_available() == 1 ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK_INT_EQ(WEXITSTATUS(status), 0);
}
