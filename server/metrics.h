/*
 * metrics.h - the process's counters and histograms, rendered in the
 * Prometheus text format for GET /metrics: requests by route and status,
 * request latency by route, jobs finished by state, jobs deleted by reason,
 * job durations by method, the store and the queue (store errors and
 * reconnects, claim latency, lease renewals and expiries, claims lost), and
 * the gauges the caller samples at render time (queue depth, busy workers,
 * cache use), and each tenant's use of its quotas as the store counts it
 * (read at most every TM_METRICS_USAGE_TTL_S seconds).
 * The counters are the one process-wide metrics state of server/.
 * Thread-safety: every function is thread-safe (relaxed atomics: a scrape
 * may see one counter a request ahead of another).
 */
#ifndef TM_SERVER_METRICS_H
#define TM_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "api/responses.h"
#include "store.h"

/*
 * Requests are counted per route: route is the router's index of the route
 * that took the request, in [0, TM_METRICS_MAX_ROUTES), or
 * TM_METRICS_NO_ROUTE when none did. The "route" labels come with
 * tm_metrics_render, from the router's table; a request no route took is
 * labelled TM_METRICS_OTHER.
 */
#define TM_METRICS_MAX_ROUTES 32
#define TM_METRICS_NO_ROUTE (-1)
#define TM_METRICS_OTHER "other"

void tm_metrics_request(int route, int status, double seconds);
void tm_metrics_job_finished(const char *method, enum tm_job_state state, double seconds);

/* Why finished jobs left the store: the "reason" label. */
enum tm_job_deletion { TM_JOB_DELETED_REQUEST, TM_JOB_DELETED_EXPIRED, TM__JOB_DELETED_COUNT };
void tm_metrics_jobs_deleted(enum tm_job_deletion reason, uint64_t n);

/* The store: a statement or connection that failed, and a broken
 * connection opened again (store_sqlite.c, store_pg.c). */
void tm_metrics_store_error(void);
void tm_metrics_store_reconnect(void);

/* What a claim of the queue's found, and its latency. */
enum tm_claim_outcome { TM_CLAIM_JOB, TM_CLAIM_EMPTY, TM_CLAIM_ERROR, TM__CLAIM_COUNT };
void tm_metrics_claim(enum tm_claim_outcome outcome, double seconds);
/* A renewal of a replica's leases (one statement). */
void tm_metrics_lease_renewal(void);
/* Jobs whose lease expired, handed back by this replica's rescue. */
void tm_metrics_lease_expired(uint64_t n);
/* A job this replica ran that another took (its lease had expired). */
void tm_metrics_claim_lost(void);

/* Sampled by the caller when /metrics is asked for. */
struct tm_metrics_gauges {
    int64_t queued, running;
    int workers, workers_alive, draining;
    int64_t cache_entries, cache_bytes, cache_hits, cache_misses;
    /* GPU: the manager's snapshot. */
    int gpu_available, gpu_devices, gpu_slots, gpu_jobs_running, gpu_jobs_waiting;
    uint64_t gpu_jobs_started, gpu_jobs_failed, gpu_auto_on_cpu, gpu_auto_fallbacks;
    int64_t gpu_total_bytes[16], gpu_free_bytes[16];
    /* Per-tenant use (tm_metrics_tenant_usage); NULL: not rendered. */
    const struct tm_store_usage *usage;
};

/*
 * Per-tenant use for topicd_tenant_stored_bytes and topicd_tenant_jobs:
 * the store's usage_top, read at most once per TM_METRICS_USAGE_TTL_S
 * seconds and shared by the scrapes in between, so that scrapes (several
 * Prometheus servers, a short interval) cost the store one pair of reads
 * per period. The labels are bounded: the TM_STORE_USAGE_TOP tenants with
 * the most get their own, the rest are summed as tenant="other" (a tenant
 * named "other" is counted there too). 0, or -1 when the store could not be
 * read (*out then holds the last good reading, or nothing).
 */
#define TM_METRICS_USAGE_TTL_S 5.0
int tm_metrics_tenant_usage(struct tm_store *s, struct tm_store_usage *out);

/* The exposition text, owned (tm_free); NULL when out of memory.
 * route_labels: n_routes labels (borrowed), the one of route index i at i. */
char *tm_metrics_render(const struct tm_metrics_gauges *g, const char *const *route_labels,
                        int n_routes, size_t *len);

#endif
