/* metrics.c - Prometheus counters and histograms (see metrics.h). */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"

/* The slot of requests no route took, after the routes'. */
#define NO_ROUTE_SLOT TM_METRICS_MAX_ROUTES

/* The statuses the service answers with; anything else counts as "other". */
static const int statuses[] = {200, 201, 202, 204, 400, 404, 405, 408,
                               409, 413, 415, 422, 429, 500, 503, 0};
#define N_STATUS (sizeof(statuses) / sizeof(statuses[0]))

static const double req_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define N_REQ_BUCKETS (sizeof(req_buckets) / sizeof(req_buckets[0]))

static const double job_buckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
#define N_JOB_BUCKETS (sizeof(job_buckets) / sizeof(job_buckets[0]))

static const char *const methods[] = {"nmf", "truncated_svd", "full_svd", "other"};
#define N_METHODS 4

struct histogram {
    atomic_ullong counts[N_REQ_BUCKETS + 1]; /* the last is +Inf */
    atomic_ullong sum_us;                    /* microseconds, so it stays an integer */
    atomic_ullong n;
};

static const char *const claim_outcomes[TM__CLAIM_COUNT] = {"job", "empty", "error"};

static struct {
    atomic_ullong requests[TM_METRICS_MAX_ROUTES + 1][N_STATUS];
    struct histogram latency[TM_METRICS_MAX_ROUTES + 1];
    atomic_ullong jobs_finished[TM__JOB_STATE_COUNT];
    atomic_ullong jobs_deleted[TM__JOB_DELETED_COUNT];
    struct histogram job_seconds[N_METHODS];
    atomic_ullong store_errors, store_reconnects;
    atomic_ullong claims[TM__CLAIM_COUNT];
    struct histogram claim_seconds;
    atomic_ullong lease_renewals, lease_expired, claims_lost;
} m;

static void observe(struct histogram *h, const double *buckets, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > buckets[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)(v * 1e6), memory_order_relaxed);
    atomic_fetch_add_explicit(&h->n, 1, memory_order_relaxed);
}

void tm_metrics_request(int route, int status, double seconds)
{
    if (route < 0 || route >= TM_METRICS_MAX_ROUTES)
        route = NO_ROUTE_SLOT;
    size_t s = 0;
    while (s < N_STATUS - 1 && statuses[s] != status)
        s++;
    atomic_fetch_add_explicit(&m.requests[route][s], 1, memory_order_relaxed);
    observe(&m.latency[route], req_buckets, N_REQ_BUCKETS, seconds);
}

void tm_metrics_job_finished(const char *method, enum tm_job_state state, double seconds)
{
    if ((unsigned)state < TM__JOB_STATE_COUNT)
        atomic_fetch_add_explicit(&m.jobs_finished[state], 1, memory_order_relaxed);
    int i = 0;
    while (i < N_METHODS - 1 && strcmp(methods[i], method ? method : ""))
        i++;
    observe(&m.job_seconds[i], job_buckets, N_JOB_BUCKETS, seconds);
}

void tm_metrics_jobs_deleted(enum tm_job_deletion reason, uint64_t n)
{
    if ((unsigned)reason < TM__JOB_DELETED_COUNT)
        atomic_fetch_add_explicit(&m.jobs_deleted[reason], n, memory_order_relaxed);
}

static void count(atomic_ullong *a, uint64_t n)
{
    atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

void tm_metrics_store_error(void)
{
    count(&m.store_errors, 1);
}

void tm_metrics_store_reconnect(void)
{
    count(&m.store_reconnects, 1);
}

void tm_metrics_claim(enum tm_claim_outcome outcome, double seconds)
{
    if ((unsigned)outcome < TM__CLAIM_COUNT)
        count(&m.claims[outcome], 1);
    observe(&m.claim_seconds, req_buckets, N_REQ_BUCKETS, seconds);
}

void tm_metrics_lease_renewal(void)
{
    count(&m.lease_renewals, 1);
}

void tm_metrics_lease_expired(uint64_t n)
{
    count(&m.lease_expired, n);
}

void tm_metrics_claim_lost(void)
{
    count(&m.claims_lost, 1);
}

/* The last reading of the store's per-tenant use and when it was made
 * (monotonic seconds; 0: never). */
static struct {
    pthread_mutex_t lock;
    double at;
    struct tm_store_usage u;
} usage = {.lock = PTHREAD_MUTEX_INITIALIZER};

int tm_metrics_tenant_usage(struct tm_store *s, struct tm_store_usage *out)
{
    int rc = 0;
    /* One scrape reads the store while the others wait for its reading. */
    pthread_mutex_lock(&usage.lock);
    double now = tm_clock_monotonic();
    if (!usage.at || now - usage.at >= TM_METRICS_USAGE_TTL_S) {
        struct tm_store_usage u;
        char err[TM_ERR_SIZE];
        if (s->m->usage_top(s->ctx, &u, err) == TM_OK) {
            usage.u = u;
            usage.at = now;
        } else {
            rc = -1;
        }
    }
    *out = usage.u;
    pthread_mutex_unlock(&usage.lock);
    return rc;
}

/* topicd_tenant_* of u: its tenants, then "other" (a tenant named so
 * included). */
static void tenant_text(struct tm_jbuf *b, const struct tm_store_usage *u)
{
    int64_t other = u->stored_other, queued = u->queued_other, running = u->running_other;
    tm_jbuf_puts(b, "# HELP topicd_tenant_stored_bytes Bytes a tenant keeps (corpus text, job"
                    " specs, results), as its stored-bytes quota counts them; the tenants with"
                    " the most, the rest as tenant=\"other\".\n"
                    "# TYPE topicd_tenant_stored_bytes gauge\n");
    for (int i = 0; i < u->n_stored; i++) {
        if (!strcmp(u->stored[i].tenant, TM_METRICS_OTHER))
            other += u->stored[i].stored_bytes;
        else
            tm_jbuf_printf(b, "topicd_tenant_stored_bytes{tenant=\"%s\"} %lld\n",
                           u->stored[i].tenant, (long long)u->stored[i].stored_bytes);
    }
    tm_jbuf_printf(b, "topicd_tenant_stored_bytes{tenant=\"%s\"} %lld\n", TM_METRICS_OTHER,
                   (long long)other);
    tm_jbuf_puts(b, "# HELP topicd_tenant_jobs Jobs of a tenant queued or running, in the whole"
                    " store; the tenants with the most, the rest as tenant=\"other\".\n"
                    "# TYPE topicd_tenant_jobs gauge\n");
    for (int i = 0; i < u->n_jobs; i++) {
        if (!strcmp(u->jobs[i].tenant, TM_METRICS_OTHER)) {
            queued += u->jobs[i].queued;
            running += u->jobs[i].running;
            continue;
        }
        tm_jbuf_printf(b,
                       "topicd_tenant_jobs{tenant=\"%s\",state=\"queued\"} %lld\n"
                       "topicd_tenant_jobs{tenant=\"%s\",state=\"running\"} %lld\n",
                       u->jobs[i].tenant, (long long)u->jobs[i].queued, u->jobs[i].tenant,
                       (long long)u->jobs[i].running);
    }
    tm_jbuf_printf(b,
                   "topicd_tenant_jobs{tenant=\"%s\",state=\"queued\"} %lld\n"
                   "topicd_tenant_jobs{tenant=\"%s\",state=\"running\"} %lld\n",
                   TM_METRICS_OTHER, (long long)queued, TM_METRICS_OTHER, (long long)running);
}

static unsigned long long load(atomic_ullong *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

/* label NULL: a histogram without labels. */
static void histogram_text(struct tm_jbuf *b, const char *name, const char *label,
                           const char *value, struct histogram *h, const double *buckets, size_t nb)
{
    char lv[160] = "", braces[170] = "";
    if (label) {
        snprintf(lv, sizeof(lv), "%s=\"%s\",", label, value);
        snprintf(braces, sizeof(braces), "{%s=\"%s\"}", label, value);
    }
    unsigned long long cum = 0;
    for (size_t i = 0; i <= nb; i++) {
        cum += load(&h->counts[i]);
        if (i < nb)
            tm_jbuf_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, lv, buckets[i], cum);
        else
            tm_jbuf_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, lv, cum);
    }
    tm_jbuf_printf(b, "%s_sum%s %.6f\n", name, braces, (double)load(&h->sum_us) * 1e-6);
    tm_jbuf_printf(b, "%s_count%s %llu\n", name, braces, load(&h->n));
}

/* The label of slot r, NULL for a slot past the router's table. */
static const char *slot_label(int r, const char *const *labels, int n_routes)
{
    if (r == NO_ROUTE_SLOT)
        return TM_METRICS_OTHER;
    return r < n_routes ? labels[r] : NULL;
}

char *tm_metrics_render(const struct tm_metrics_gauges *g, const char *const *route_labels,
                        int n_routes, size_t *len)
{
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    tm_jbuf_puts(&b, "# HELP topicd_http_requests_total HTTP requests by route and status.\n"
                     "# TYPE topicd_http_requests_total counter\n");
    for (int r = 0; r <= NO_ROUTE_SLOT; r++) {
        const char *label = slot_label(r, route_labels, n_routes);
        for (size_t s = 0; label && s < N_STATUS; s++) {
            unsigned long long v = load(&m.requests[r][s]);
            if (!v)
                continue;
            if (statuses[s])
                tm_jbuf_printf(&b, "topicd_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                               label, statuses[s], v);
            else
                tm_jbuf_printf(&b,
                               "topicd_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                               label, v);
        }
    }
    tm_jbuf_puts(&b, "# HELP topicd_http_request_duration_seconds Request latency by route.\n"
                     "# TYPE topicd_http_request_duration_seconds histogram\n");
    for (int r = 0; r <= NO_ROUTE_SLOT; r++) {
        const char *label = slot_label(r, route_labels, n_routes);
        if (label && load(&m.latency[r].n))
            histogram_text(&b, "topicd_http_request_duration_seconds", "route", label,
                           &m.latency[r], req_buckets, N_REQ_BUCKETS);
    }
    tm_jbuf_puts(&b, "# HELP topicd_jobs Jobs now queued or running.\n"
                     "# TYPE topicd_jobs gauge\n");
    tm_jbuf_printf(&b, "topicd_jobs{state=\"queued\"} %lld\ntopicd_jobs{state=\"running\"} %lld\n",
                   (long long)g->queued, (long long)g->running);
    tm_jbuf_puts(&b, "# HELP topicd_jobs_finished_total Jobs finished since start, by state.\n"
                     "# TYPE topicd_jobs_finished_total counter\n");
    for (int s = TM_JOB_SUCCEEDED; s < TM__JOB_STATE_COUNT; s++)
        tm_jbuf_printf(&b, "topicd_jobs_finished_total{state=\"%s\"} %llu\n",
                       tm_job_state_name((enum tm_job_state)s), load(&m.jobs_finished[s]));
    tm_jbuf_printf(&b,
                   "# HELP topicd_jobs_deleted_total Finished jobs deleted since start: on request"
                   " (DELETE) or expired (--job-retention).\n"
                   "# TYPE topicd_jobs_deleted_total counter\n"
                   "topicd_jobs_deleted_total{reason=\"request\"} %llu\n"
                   "topicd_jobs_deleted_total{reason=\"expired\"} %llu\n",
                   load(&m.jobs_deleted[TM_JOB_DELETED_REQUEST]),
                   load(&m.jobs_deleted[TM_JOB_DELETED_EXPIRED]));
    tm_jbuf_printf(&b,
                   "# HELP topicd_queue_depth Jobs waiting for a worker.\n"
                   "# TYPE topicd_queue_depth gauge\ntopicd_queue_depth %lld\n"
                   "# HELP topicd_workers Worker threads.\n"
                   "# TYPE topicd_workers gauge\ntopicd_workers %d\n"
                   "# HELP topicd_workers_busy Workers running a job.\n"
                   "# TYPE topicd_workers_busy gauge\ntopicd_workers_busy %lld\n"
                   "# HELP topicd_draining 1 while shutting down.\n"
                   "# TYPE topicd_draining gauge\ntopicd_draining %d\n",
                   (long long)g->queued, g->workers_alive, (long long)g->running, g->draining);
    tm_jbuf_puts(&b, "# HELP topicd_job_duration_seconds Run time of finished jobs by method.\n"
                     "# TYPE topicd_job_duration_seconds histogram\n");
    for (int i = 0; i < N_METHODS; i++)
        histogram_text(&b, "topicd_job_duration_seconds", "method", methods[i], &m.job_seconds[i],
                       job_buckets, N_JOB_BUCKETS);
    tm_jbuf_printf(&b,
                   "# HELP topicd_store_errors_total Store statements or connections that failed.\n"
                   "# TYPE topicd_store_errors_total counter\ntopicd_store_errors_total %llu\n"
                   "# HELP topicd_store_reconnects_total Broken store connections opened again.\n"
                   "# TYPE topicd_store_reconnects_total counter\n"
                   "topicd_store_reconnects_total %llu\n"
                   "# HELP topicd_job_claims_total Claims of the next queued job, by what they"
                   " found.\n"
                   "# TYPE topicd_job_claims_total counter\n",
                   load(&m.store_errors), load(&m.store_reconnects));
    for (int i = 0; i < TM__CLAIM_COUNT; i++)
        tm_jbuf_printf(&b, "topicd_job_claims_total{outcome=\"%s\"} %llu\n", claim_outcomes[i],
                       load(&m.claims[i]));
    tm_jbuf_puts(&b, "# HELP topicd_job_claim_duration_seconds Latency of a claim (one store"
                     " transaction).\n"
                     "# TYPE topicd_job_claim_duration_seconds histogram\n");
    histogram_text(&b, "topicd_job_claim_duration_seconds", NULL, NULL, &m.claim_seconds,
                   req_buckets, N_REQ_BUCKETS);
    tm_jbuf_printf(&b,
                   "# HELP topicd_lease_renewals_total Renewals of this replica's job leases.\n"
                   "# TYPE topicd_lease_renewals_total counter\ntopicd_lease_renewals_total %llu\n"
                   "# HELP topicd_lease_expiries_total Jobs whose lease expired, handed back to the"
                   " queue (or ended) by this replica.\n"
                   "# TYPE topicd_lease_expiries_total counter\ntopicd_lease_expiries_total %llu\n"
                   "# HELP topicd_claims_lost_total Jobs this replica ran that another took (its"
                   " lease had expired); nothing of theirs was written.\n"
                   "# TYPE topicd_claims_lost_total counter\ntopicd_claims_lost_total %llu\n",
                   load(&m.lease_renewals), load(&m.lease_expired), load(&m.claims_lost));
    tm_jbuf_printf(&b,
                   "# HELP topicd_matrix_cache_entries Vectorized matrices cached.\n"
                   "# TYPE topicd_matrix_cache_entries gauge\ntopicd_matrix_cache_entries %lld\n"
                   "# HELP topicd_matrix_cache_bytes Memory of cached matrices.\n"
                   "# TYPE topicd_matrix_cache_bytes gauge\ntopicd_matrix_cache_bytes %lld\n"
                   "# HELP topicd_matrix_cache_hits_total Jobs that skipped vectorization.\n"
                   "# TYPE topicd_matrix_cache_hits_total counter\n"
                   "topicd_matrix_cache_hits_total %lld\n"
                   "# HELP topicd_matrix_cache_misses_total Jobs that vectorized.\n"
                   "# TYPE topicd_matrix_cache_misses_total counter\n"
                   "topicd_matrix_cache_misses_total %lld\n",
                   (long long)g->cache_entries, (long long)g->cache_bytes, (long long)g->cache_hits,
                   (long long)g->cache_misses);
    tm_jbuf_printf(&b,
                   "# HELP topicd_gpu_available 1 when a GPU is usable.\n"
                   "# TYPE topicd_gpu_available gauge\ntopicd_gpu_available %d\n"
                   "# HELP topicd_gpu_slots Concurrent GPU jobs allowed, all devices.\n"
                   "# TYPE topicd_gpu_slots gauge\ntopicd_gpu_slots %d\n"
                   "# HELP topicd_gpu_jobs GPU jobs now running or waiting for room.\n"
                   "# TYPE topicd_gpu_jobs gauge\ntopicd_gpu_jobs{state=\"running\"} %d\n"
                   "topicd_gpu_jobs{state=\"waiting\"} %d\n"
                   "# HELP topicd_gpu_jobs_started_total GPU jobs started.\n"
                   "# TYPE topicd_gpu_jobs_started_total counter\n"
                   "topicd_gpu_jobs_started_total %llu\n"
                   "# HELP topicd_gpu_jobs_failed_total GPU jobs failed on the device.\n"
                   "# TYPE topicd_gpu_jobs_failed_total counter\n"
                   "topicd_gpu_jobs_failed_total %llu\n"
                   "# HELP topicd_gpu_auto_on_cpu_total \"auto\" jobs run on the CPU.\n"
                   "# TYPE topicd_gpu_auto_on_cpu_total counter\n"
                   "topicd_gpu_auto_on_cpu_total %llu\n"
                   "# HELP topicd_gpu_auto_fallbacks_total \"auto\" jobs retried on the CPU.\n"
                   "# TYPE topicd_gpu_auto_fallbacks_total counter\n"
                   "topicd_gpu_auto_fallbacks_total %llu\n",
                   g->gpu_available, g->gpu_slots, g->gpu_jobs_running, g->gpu_jobs_waiting,
                   (unsigned long long)g->gpu_jobs_started, (unsigned long long)g->gpu_jobs_failed,
                   (unsigned long long)g->gpu_auto_on_cpu,
                   (unsigned long long)g->gpu_auto_fallbacks);
    if (g->gpu_devices > 0)
        tm_jbuf_puts(&b, "# HELP topicd_gpu_memory_bytes Device memory, total and free.\n"
                         "# TYPE topicd_gpu_memory_bytes gauge\n");
    for (int d = 0; d < g->gpu_devices && d < 16; d++)
        tm_jbuf_printf(&b,
                       "topicd_gpu_memory_bytes{device=\"%d\",kind=\"total\"} %lld\n"
                       "topicd_gpu_memory_bytes{device=\"%d\",kind=\"free\"} %lld\n",
                       d, (long long)g->gpu_total_bytes[d], d, (long long)g->gpu_free_bytes[d]);
    if (g->usage)
        tenant_text(&b, g->usage);
    tm_status st;
    return tm_jbuf_detach(&b, len, &st);
}
