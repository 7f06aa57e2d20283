/* test_routes.c - the route table of server/routes.c without sockets: every
 * row matches its own pattern, unknown paths match none, each route's
 * methods and Allow set, and the labels the metrics show. routes.c is
 * included to reach its statics; tests/integration/test_http*.c drive the
 * same table over HTTP. */
#include "server/routes.c"

#include "harness.h"

/* The API as it has always been: the "route" labels dashboards select on
 * (in the metrics' order), the Allow set of each route's 405, and whether a
 * trailing "/" matches too. */
static const struct {
    const char *pattern, *allow;
    int slash;
} want[] = {
    {"/healthz", "GET, HEAD", 0},
    {"/readyz", "GET, HEAD", 0},
    {"/metrics", "GET, HEAD", 0},
    {"/v1/openapi.yaml", "GET, HEAD", 0},
    {"/v1/corpora", "GET, HEAD, POST", 1},
    {"/v1/corpora/{id}", "GET, HEAD, DELETE", 1},
    {"/v1/corpora/{id}/documents", "GET, HEAD, POST", 0},
    {"/v1/jobs", "GET, HEAD, POST", 1},
    {"/v1/jobs/{id}", "GET, HEAD, DELETE", 1},
    {"/v1/jobs/{id}/result", "GET, HEAD", 0},
    {"/v1/jobs/{id}/document-topics", "GET, HEAD", 0},
    {"/v1/jobs/{id}/model", "GET, HEAD", 0},
    {"/v1/jobs/{id}/pyldavis.json", "GET, HEAD", 0},
    {"/v1/jobs/{id}/plots/singular_values.svg", "GET, HEAD", 0},
    {"/v1/jobs/{id}/plots/error_trace.svg", "GET, HEAD", 0},
    {"/v1/jobs/{id}/plots/topics.svg", "GET, HEAD", 0},
    {"/v1/jobs/{id}/plots/document_topics.svg", "GET, HEAD", 0},
    {"/v1/jobs/{id}/plots/sweep.svg", "GET, HEAD", 0},
    {"/v1/jobs/{id}/report.html", "GET, HEAD", 0},
    {"/v1/jobs/{id}/topic-terms.csv", "GET, HEAD", 0},
    {"/v1/jobs/{id}/document-topics.csv", "GET, HEAD", 0},
    {"/v1/jobs/{id}:cancel", "POST", 0},
    {"/v1/jobs/{id}:transform", "POST", 0},
    {"/v1/info", "GET, HEAD", 1},
    {"/v1/session", "GET, HEAD, POST, DELETE", 0},
    {"/v1/jobs/{id}/links", "POST", 0},
    {"/", "GET, HEAD", 0},
    {"/ui/app.js", "GET, HEAD", 0},
    {"/ui/app.css", "GET, HEAD", 0},
};
#define N_WANT ((int)(sizeof(want) / sizeof(want[0])))

/* pattern with {id} replaced by id, then tail. */
static void sample_path(const char *pattern, const char *id, const char *tail, char *out,
                        size_t size)
{
    const char *at = strstr(pattern, "{id}");
    if (at)
        snprintf(out, size, "%.*s%s%s%s", (int)(at - pattern), pattern, id, at + 4, tail);
    else
        snprintf(out, size, "%s%s", pattern, tail);
}

/* 1 when method is one of the names in allow ("GET, HEAD, POST"). */
static int listed(const char *allow, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = allow; n && *p;) {
        size_t w = strcspn(p, ",");
        if (w == n && !strncmp(p, method, n))
            return 1;
        p += w;
        p += *p ? 2 : 0; /* ", " */
    }
    return 0;
}

TM_TEST(routes_labels)
{
    const char *labels[TM_METRICS_MAX_ROUTES];
    int n = route_labels(labels);
    REQUIRE(n == N_WANT);
    for (int i = 0; i < n; i++)
        CHECK_STR_EQ(labels[i], want[i].pattern);
}

TM_TEST(routes_every_row_matches_itself)
{
    static const char *const ids[] = {"c_0123456789abcdef01234567", "j-X_9", "a",
                                      /* the longest id: TM_ID_SIZE - 1 characters */
                                      "abcdefghijklmnopqrstuvwxyz0123456789ABC"};
    REQUIRE(N_ROUTES == N_WANT);
    for (int i = 0; i < N_ROUTES; i++)
        for (size_t j = 0; j < sizeof(ids) / sizeof(ids[0]); j++) {
            const struct route *rt = &routes[i];
            char path[256], id[TM_ID_SIZE] = "";
            sample_path(rt->pattern, ids[j], "", path, sizeof(path));
            if (route_of(path, id) != rt)
                tm_test_fail(t, __FILE__, __LINE__, "%s does not match %s", path, rt->pattern);
            if (strstr(rt->pattern, "{id}"))
                CHECK_STR_EQ(id, ids[j]);
            /* A trailing "/" matches the rows that always took one, and only those. */
            sample_path(rt->pattern, ids[j], "/", path, sizeof(path));
            const struct route *slashed = route_of(path, id);
            if (slashed != (want[i].slash ? rt : NULL))
                tm_test_fail(t, __FILE__, __LINE__, "%s: %s", path,
                             slashed ? slashed->pattern : "no route");
            sample_path(rt->pattern, ids[j], ".x", path, sizeof(path));
            CHECK(route_of(path, id) == NULL);
        }
}

TM_TEST(routes_unknown_paths)
{
    static const char *const paths[] = {
        "",
        "/v1",
        "/ui",
        "/ui/",
        "/ui/app.js/",
        "/index.html",
        "/v1/",
        "/healthz/x",
        "/healthzz",
        "/HEALTHZ",
        "/v2/jobs",
        "/v1/jobs//",
        "/v1/jobs/j_1//",
        "/v1/corpora//documents",
        "/v1/corpora/a.b",
        "/v1/corpora/a%20b",
        "/v1/corpora/abcdefghijklmnopqrstuvwxyz0123456789ABCD", /* TM_ID_SIZE characters */
        "/v1/jobs/j_1:stop",
        "/v1/jobs/j_1/documents",
        "/v1/corpora/c_1:cancel",
        "/v1/corpora/c_1/result",
        "/v1/corpora/c_1/document-topics",
        "/v1/jobs/j_1/plots/topics",
        "/v1/jobs/j_1/plots/pie.svg",
        "/v1/jobs/j_1/plots/",
        "/v1/info/x",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char id[TM_ID_SIZE];
        const struct route *rt = route_of(paths[i], id);
        if (rt)
            tm_test_fail(t, __FILE__, __LINE__, "\"%s\" matches %s", paths[i], rt->pattern);
    }
}

TM_TEST(routes_methods_and_allow)
{
    static const char *const methods[] = {"GET",     "HEAD", "POST", "DELETE",    "PUT", "PATCH",
                                          "OPTIONS", "get",  "POS",  "GET, HEAD", ""};
    REQUIRE(N_ROUTES == N_WANT);
    for (int i = 0; i < N_ROUTES; i++) {
        const struct route *rt = &routes[i];
        char allow[32];
        allow_of(rt, allow, sizeof(allow));
        CHECK_STR_EQ(allow, want[i].allow);
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
            if (!!handler_of(rt, methods[m]) != listed(want[i].allow, methods[m]))
                tm_test_fail(t, __FILE__, __LINE__, "%s %s: %s", methods[m], rt->pattern,
                             handler_of(rt, methods[m]) ? "a handler" : "no handler");
        CHECK(handler_of(rt, "HEAD") == handler_of(rt, "GET"));
        /* Only POST takes a body, and a route that takes one answers it. */
        CHECK(!rt->post_body || rt->post);
    }
}

TM_TEST(routes_label_the_metrics)
{
    const char *labels[TM_METRICS_MAX_ROUTES];
    int n = route_labels(labels);
    char id[TM_ID_SIZE];
    const struct route *rt = route_of("/v1/jobs/j_1:cancel", id);
    REQUIRE(rt);
    /* Only this test counts requests on these two series in this process
     * (the HTTP tests run their own topicd; test_metrics.c uses others). */
    tm_metrics_request((int)(rt - routes), 405, 0.001);
    tm_metrics_request(TM_METRICS_NO_ROUTE, 404, 0.001);
    struct tm_metrics_gauges g;
    memset(&g, 0, sizeof(g));
    size_t len;
    char *text = tm_metrics_render(&g, labels, n, &len);
    REQUIRE(text);
    CHECK(strstr(text, "topicd_http_requests_total{route=\"/v1/jobs/{id}:cancel\",status=\"405\"} "
                       "1\n") != NULL);
    CHECK(strstr(text, "topicd_http_requests_total{route=\"other\",status=\"404\"} 1\n") != NULL);
    CHECK(strstr(text, "topicd_http_request_duration_seconds_count{route=\"/v1/jobs/{id}:cancel\"} "
                       "1\n") != NULL);
    tm_free(text);
}

/* Signed links go to a job's read-only routes only: a GET, under
 * /v1/jobs/{id} (auth_link reads the tenant from that job), each name once. */
TM_TEST(routes_links)
{
    const char *names[LINKED_MAX], *patterns[LINKED_MAX];
    int n = routes_linked(names, patterns, LINKED_MAX);
    /* the job, result, document topics, model, pyldavis.json, 5 plots, the
     * report, 2 CSV files */
    CHECK_INT_EQ(n, 13);
    for (int i = 0; i < n; i++) {
        char id[TM_ID_SIZE], sample[128];
        CHECK(!strncmp(patterns[i], "/v1/jobs/{id}", 13));
        sample_path(patterns[i], "j_1", "", sample, sizeof(sample));
        const struct route *rt = route_of(sample, id);
        REQUIRE(rt != NULL);
        CHECK(rt->get != NULL);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(names[i], names[j]) != 0);
    }
    char path[80];
    route_path("/v1/jobs/{id}/result", "j_1", path, sizeof(path));
    CHECK_STR_EQ(path, "/v1/jobs/j_1/result");
    route_path("/v1/session", "j_1", path, sizeof(path));
    CHECK_STR_EQ(path, "/v1/session");
}
