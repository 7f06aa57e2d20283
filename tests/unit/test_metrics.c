/* test_metrics.c - the Prometheus counters and their exposition text. The
 * counters are process-wide and other tests' servers add to them, so every
 * check reads a series before and after and compares the difference. */
#include <stdlib.h>

#include "core/alloc.h"
#include "harness.h"
#include "server/metrics.h"

static const char *const labels[] = {"/a", "/b/{id}"};

/* The value of the series `name` in a fresh rendering; 0 when it is
 * missing (counters are rendered once they are non-zero), -1 when out of
 * memory. */
static double series(const char *name)
{
    struct tm_metrics_gauges g = {0};
    size_t len;
    char *text = tm_metrics_render(&g, labels, 2, &len);
    if (!text)
        return -1;
    double v = 0;
    size_t n = strlen(name);
    for (const char *line = text; *line;) {
        if (!strncmp(line, name, n) && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : line + strlen(line);
    }
    tm_free(text);
    return v;
}

TM_TEST(metrics_requests_by_route_and_status)
{
    const char *ok_b = "topicd_http_requests_total{route=\"/b/{id}\",status=\"200\"}";
    const char *odd_b = "topicd_http_requests_total{route=\"/b/{id}\",status=\"other\"}";
    /* 409, not 404: routes_label_the_metrics counts one "other" 404 and
     * checks for exactly 1. */
    const char *nf_other = "topicd_http_requests_total{route=\"other\",status=\"409\"}";
    double ok0 = series(ok_b), odd0 = series(odd_b), nf0 = series(nf_other);
    REQUIRE(ok0 >= 0 && odd0 >= 0 && nf0 >= 0);
    tm_metrics_request(1, 200, 0.001);
    tm_metrics_request(1, 200, 0.001);
    tm_metrics_request(1, 418, 0.001); /* not a status the service answers with */
    tm_metrics_request(TM_METRICS_NO_ROUTE, 409, 0.001);
    tm_metrics_request(TM_METRICS_MAX_ROUTES, 409, 0.001); /* out of range: no route */
    CHECK(series(ok_b) - ok0 == 2);
    CHECK(series(odd_b) - odd0 == 1);
    CHECK(series(nf_other) - nf0 == 2);
}

TM_TEST(metrics_latency_buckets_are_cumulative)
{
    const char *le1ms = "topicd_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.001\"}";
    const char *le2ms = "topicd_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.0025\"}";
    const char *inf = "topicd_http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"}";
    const char *count = "topicd_http_request_duration_seconds_count{route=\"/a\"}";
    const char *sum = "topicd_http_request_duration_seconds_sum{route=\"/a\"}";
    double b1 = series(le1ms), b2 = series(le2ms), bi = series(inf), c = series(count),
           s = series(sum);
    REQUIRE(b1 >= 0 && b2 >= 0 && bi >= 0 && c >= 0 && s >= 0);
    tm_metrics_request(0, 200, 0.002); /* above 1 ms, within 2.5 ms */
    tm_metrics_request(0, 200, 60.0);  /* above every bucket */
    CHECK(series(le1ms) - b1 == 0);
    CHECK(series(le2ms) - b2 == 1);
    CHECK(series(inf) - bi == 2);
    CHECK(series(count) - c == 2);
    CHECK_NEAR(series(sum) - s, 60.002, 1e-9);
}

TM_TEST(metrics_jobs_finished_and_deleted)
{
    const char *failed = "topicd_jobs_finished_total{state=\"failed\"}";
    const char *expired = "topicd_jobs_deleted_total{reason=\"expired\"}";
    const char *nmf_n = "topicd_job_duration_seconds_count{method=\"nmf\"}";
    const char *other_n = "topicd_job_duration_seconds_count{method=\"other\"}";
    double f = series(failed), e = series(expired), n = series(nmf_n), o = series(other_n);
    REQUIRE(f >= 0 && e >= 0 && n >= 0 && o >= 0);
    tm_metrics_job_finished("nmf", TM_JOB_FAILED, 3.0);
    tm_metrics_job_finished("lda", TM_JOB_FAILED, 3.0); /* an unknown method counts as other */
    tm_metrics_jobs_deleted(TM_JOB_DELETED_EXPIRED, 7);
    CHECK(series(failed) - f == 2);
    CHECK(series(nmf_n) - n == 1);
    CHECK(series(other_n) - o == 1);
    CHECK(series(expired) - e == 7);
}

TM_TEST(metrics_gauges_are_rendered_as_sampled)
{
    struct tm_metrics_gauges g = {0};
    g.queued = 5;
    g.running = 2;
    g.cache_hits = 11;
    size_t len;
    char *text = tm_metrics_render(&g, labels, 2, &len);
    REQUIRE(text != NULL);
    CHECK_INT_EQ(len, strlen(text));
    CHECK(strstr(text, "\ntopicd_jobs{state=\"queued\"} 5\n") != NULL);
    CHECK(strstr(text, "\ntopicd_jobs{state=\"running\"} 2\n") != NULL);
    CHECK(strstr(text, "\ntopicd_matrix_cache_hits_total 11\n") != NULL);
    /* Every line is a comment or "name{labels} value": no empty label set. */
    CHECK(strstr(text, "{}") == NULL);
    CHECK(text[len - 1] == '\n');
    tm_free(text);
}

/* Per-tenant use: one series per listed tenant, the rest (and a tenant
 * named "other") summed as tenant="other"; none without a reading. */
TM_TEST(metrics_tenant_usage_bounded)
{
    struct tm_store_usage u;
    memset(&u, 0, sizeof(u));
    snprintf(u.stored[0].tenant, sizeof(u.stored[0].tenant), "acme");
    u.stored[0].stored_bytes = 500;
    snprintf(u.stored[1].tenant, sizeof(u.stored[1].tenant), "other");
    u.stored[1].stored_bytes = 7;
    u.n_stored = 2;
    u.stored_other = 30;
    snprintf(u.jobs[0].tenant, sizeof(u.jobs[0].tenant), "acme");
    u.jobs[0].queued = 3;
    u.jobs[0].running = 1;
    u.n_jobs = 1;
    u.queued_other = 4;
    u.running_other = 2;
    struct tm_metrics_gauges g = {0};
    size_t len;
    char *text = tm_metrics_render(&g, labels, 2, &len);
    REQUIRE(text != NULL);
    CHECK(strstr(text, "topicd_tenant_") == NULL);
    tm_free(text);
    g.usage = &u;
    text = tm_metrics_render(&g, labels, 2, &len);
    REQUIRE(text != NULL);
    CHECK(strstr(text, "\ntopicd_tenant_stored_bytes{tenant=\"acme\"} 500\n") != NULL);
    CHECK(strstr(text, "\ntopicd_tenant_stored_bytes{tenant=\"other\"} 37\n") != NULL);
    CHECK(strstr(text, "{tenant=\"other\"} 7\n") == NULL);
    CHECK(strstr(text, "\ntopicd_tenant_jobs{tenant=\"acme\",state=\"queued\"} 3\n") != NULL);
    CHECK(strstr(text, "\ntopicd_tenant_jobs{tenant=\"acme\",state=\"running\"} 1\n") != NULL);
    CHECK(strstr(text, "\ntopicd_tenant_jobs{tenant=\"other\",state=\"queued\"} 4\n") != NULL);
    CHECK(strstr(text, "\ntopicd_tenant_jobs{tenant=\"other\",state=\"running\"} 2\n") != NULL);
    CHECK(strstr(text, "# TYPE topicd_tenant_stored_bytes gauge\n") != NULL);
    tm_free(text);
}
