/*
 * metrics.h - the process's counters and histograms, rendered in the
 * Prometheus text format for GET /metrics: requests by route and status,
 * request latency by route, jobs finished by state, jobs deleted by reason,
 * job durations by method, and the gauges the caller samples at render time (queue depth, busy
 * workers, cache use).
 * The counters are the one process-wide metrics state of server/.
 * Thread-safety: every function is thread-safe (relaxed atomics: a scrape
 * may see one counter a request ahead of another).
 */
#ifndef TM_SERVER_METRICS_H
#define TM_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "api/responses.h"

/* Route templates, the "route" label. */
#define TM_ROUTE_MAP(X)                                                                            \
    X(HEALTHZ, "/healthz")                                                                         \
    X(READYZ, "/readyz")                                                                           \
    X(METRICS, "/metrics")                                                                         \
    X(OPENAPI, "/v1/openapi.yaml")                                                                 \
    X(CORPORA, "/v1/corpora")                                                                      \
    X(CORPUS, "/v1/corpora/{id}")                                                                  \
    X(CORPUS_DOCS, "/v1/corpora/{id}/documents")                                                   \
    X(JOBS, "/v1/jobs")                                                                            \
    X(JOB, "/v1/jobs/{id}")                                                                        \
    X(JOB_RESULT, "/v1/jobs/{id}/result")                                                          \
    X(JOB_DOC_TOPICS, "/v1/jobs/{id}/document-topics")                                             \
    X(JOB_CANCEL, "/v1/jobs/{id}:cancel")                                                          \
    X(INFO, "/v1/info")                                                                            \
    X(OTHER, "other")

enum tm_route {
#define TM__ROUTE_ENUM(name, path) TM_ROUTE_##name,
    TM_ROUTE_MAP(TM__ROUTE_ENUM)
#undef TM__ROUTE_ENUM
        TM__ROUTE_COUNT
};

const char *tm_route_path(enum tm_route route);

void tm_metrics_request(enum tm_route route, int status, double seconds);
void tm_metrics_job_finished(const char *method, enum tm_job_state state, double seconds);

/* Why finished jobs left the store: the "reason" label. */
enum tm_job_deletion { TM_JOB_DELETED_REQUEST, TM_JOB_DELETED_EXPIRED, TM__JOB_DELETED_COUNT };
void tm_metrics_jobs_deleted(enum tm_job_deletion reason, uint64_t n);

/* Sampled by the caller when /metrics is asked for. */
struct tm_metrics_gauges {
    int64_t queued, running;
    int workers, workers_alive, draining;
    int64_t cache_entries, cache_bytes, cache_hits, cache_misses;
    /* GPU: the manager's snapshot. */
    int gpu_available, gpu_devices, gpu_slots, gpu_jobs_running, gpu_jobs_waiting;
    uint64_t gpu_jobs_started, gpu_jobs_failed, gpu_auto_on_cpu, gpu_auto_fallbacks;
    int64_t gpu_total_bytes[16], gpu_free_bytes[16];
};

/* The exposition text, owned (tm_free); NULL when out of memory. */
char *tm_metrics_render(const struct tm_metrics_gauges *g, size_t *len);

#endif
