/*
 * cpus.h - how many CPUs this process may use: the CPUs of its affinity mask
 * (a container's --cpuset-cpus, taskset), capped by a cgroup CPU quota (a
 * container's --cpus: cgroup v2 cpu.max, or v1 cpu.cfs_quota_us over
 * cpu.cfs_period_us), rounded up. sysconf(_SC_NPROCESSORS_ONLN) counts the
 * host's CPUs, and a container sized to one CPU would start a worker per
 * host CPU.
 * Thread-safety: reentrant.
 */
#ifndef TM_SERVER_CPUS_H
#define TM_SERVER_CPUS_H

/* At least 1. */
int tm_cpus_available(void);

/* The quota under cgroup_root (normally "/sys/fs/cgroup"), in CPUs rounded
 * up; 0 when there is none (no file, "max", or unreadable). For tests. */
int tm__cpus_cgroup_quota(const char *cgroup_root);

#endif
