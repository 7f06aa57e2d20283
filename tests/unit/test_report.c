/* test_report.c - the job report page: well-formed (read back by expat),
 * self-contained (no script, nothing fetched), with the topics, the charts
 * the result has data for, the fit, the timings and the spec, hostile text
 * escaped; allocation failures without leaks. */
#include <expat.h>
#include <string.h>

#include "api/json.h"
#include "api/report.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

struct page_seen {
    int n_svg, n_figures, n_scripts, n_external; /* src/href attributes, <link> */
    int in_pre, in_title;
    char pre[1024], title[128];
};

static void on_start(void *ctx, const char *name, const char **atts)
{
    struct page_seen *p = ctx;
    p->n_svg += !strcmp(name, "svg");
    p->n_figures += !strcmp(name, "figure");
    p->n_scripts += !strcmp(name, "script");
    p->n_external += !strcmp(name, "link") || !strcmp(name, "img") || !strcmp(name, "iframe");
    for (int i = 0; atts[i]; i += 2)
        p->n_external += !strcmp(atts[i], "src") || !strcmp(atts[i], "href");
    p->in_pre = !strcmp(name, "pre");
    p->in_title |= !strcmp(name, "title") && !p->n_svg;
}

static void on_end(void *ctx, const char *name)
{
    struct page_seen *p = ctx;
    if (!strcmp(name, "pre"))
        p->in_pre = 0;
    if (!strcmp(name, "title"))
        p->in_title = 0;
}

static void on_chars(void *ctx, const char *data, int len)
{
    struct page_seen *p = ctx;
    char *dst = p->in_pre ? p->pre : p->in_title ? p->title : NULL;
    size_t size = p->in_pre ? sizeof(p->pre) : sizeof(p->title);
    if (!dst)
        return;
    size_t n = strlen(dst);
    if (n + (size_t)len < size) {
        memcpy(dst + n, data, (size_t)len);
        dst[n + (size_t)len] = 0;
    }
}

static int read_page(const char *html, size_t len, struct page_seen *p)
{
    memset(p, 0, sizeof(*p));
    XML_Parser x = XML_ParserCreate("UTF-8");
    if (!x)
        return 0;
    XML_SetUserData(x, p);
    XML_SetElementHandler(x, on_start, on_end);
    XML_SetCharacterDataHandler(x, on_chars);
    int ok = XML_Parse(x, html, (int)len, 1) == XML_STATUS_OK;
    XML_ParserFree(x);
    return ok;
}

static const char result[] =
    "{\"n_documents\":120,\"n_features\":45,\"nnz\":900,\"method\":\"nmf\",\"n_topics\":2,"
    "\"topics\":[{\"index\":0,\"words\":[{\"term\":\"<script>x\",\"index\":0,\"weight\":2},"
    "{\"term\":\"cat\",\"index\":1,\"weight\":1}]},"
    "{\"index\":1,\"words\":[{\"term\":\"stock\",\"index\":2,\"weight\":3}]}],"
    "\"reconstruction_error\":0.75,\"n_iter\":3,\"error_trace\":[2.0,1.0,0.75],"
    "\"device\":\"cpu\",\"timings\":{\"read\":0.5,\"fit\":1.25,\"total\":2}}";

static const char spec[] =
    "{\"documents\":[\"secret text one\",\"two\"],\"model\":{\"method\":\"nmf\",\"n_topics\":2},"
    "\"note\":\"</pre><script>alert(1)</script>\"}";

static void job_init(struct tm_job_record *j)
{
    memset(j, 0, sizeof(*j));
    snprintf(j->id, sizeof(j->id), "j_report");
    snprintf(j->corpus_id, sizeof(j->corpus_id), "c_1");
    snprintf(j->method, sizeof(j->method), "nmf");
    j->state = TM_JOB_SUCCEEDED;
    j->created_at = 1796601600; /* 2026-12-07 00:00:00 UTC */
    j->finished_at = 1796601662;
}

TM_TEST(report_is_one_self_contained_page)
{
    tm_api_init();
    struct tm_job_record j;
    job_init(&j);
    double w[6] = {1, 0, 0, 1, 0.5, 0.5};
    struct tm_plot_doc_topics dt = {w, NULL, 3, 2, 120};
    char *html = NULL;
    size_t len = 0;
    struct tm_api_error e;
    REQUIRE(tm_report_render(&j, spec, strlen(spec), result, strlen(result), &dt, &html, &len,
                             &e) == TM_OK);
    CHECK_INT_EQ(strlen(html), len);
    struct page_seen p;
    CHECK(read_page(html, len, &p));
    CHECK_STR_EQ(p.title, "topicd report: j_report");
    /* topics, error_trace, document_topics: an NMF job has no singular values. */
    CHECK_INT_EQ(p.n_svg, 3);
    CHECK_INT_EQ(p.n_figures, 3);
    CHECK_INT_EQ(p.n_scripts, 0);  /* the hostile term and spec stay text */
    CHECK_INT_EQ(p.n_external, 0); /* nothing fetched */
    CHECK(strstr(p.pre, "</pre><script>alert(1)</script>") != NULL);
    CHECK(strstr(p.pre, "(2 inline documents, not shown)") != NULL);
    CHECK(strstr(html, "secret text one") == NULL);
    CHECK(strstr(html, "&lt;script&gt;x") != NULL);
    CHECK(strstr(html, "120 documents, 45 terms") != NULL);
    CHECK(strstr(html, "finished 2026-12-07 00:01:02 UTC") != NULL);
    CHECK(strstr(html, "0.75") != NULL);
    CHECK(strstr(html, ">fit</th><td class=\"num\">1.250<") != NULL);
    tm_free(html);

    /* Without weights or a spec: no heat map, no spec section. */
    REQUIRE(tm_report_render(&j, NULL, 0, result, strlen(result), NULL, &html, &len, &e) == TM_OK);
    CHECK(read_page(html, len, &p));
    CHECK_INT_EQ(p.n_svg, 2);
    CHECK(strstr(html, "<h2>Spec</h2>") == NULL);
    tm_free(html);

    CHECK_INT_EQ(tm_report_render(&j, NULL, 0, "[1]", 3, NULL, &html, &len, &e), TM_EPARSE);
    CHECK(html == NULL);
}

/* The result's coherence: a table with each measure's mean and a row per
 * topic, null (gensim's NaN) as n/a; none without it (checked above: the
 * result there has no coherence). */
TM_TEST(report_shows_coherence)
{
    tm_api_init();
    struct tm_job_record j;
    job_init(&j);
    static const char with[] =
        "{\"n_documents\":120,\"n_features\":45,\"method\":\"nmf\",\"n_topics\":2,"
        "\"topics\":[{\"index\":0,\"words\":[{\"term\":\"cat\",\"index\":1,\"weight\":1}]},"
        "{\"index\":1,\"words\":[{\"term\":\"stock\",\"index\":2,\"weight\":3}]}],"
        "\"coherence\":{\"u_mass\":{\"mean\":-1.25,\"per_topic\":[-0.5,-2]},"
        "\"c_v\":{\"mean\":0.625,\"per_topic\":[0.75,null]}},\"timings\":{\"total\":1}}";
    char *html = NULL;
    size_t len = 0;
    struct tm_api_error e;
    REQUIRE(tm_report_render(&j, NULL, 0, with, strlen(with), NULL, &html, &len, &e) == TM_OK);
    struct page_seen p;
    CHECK(read_page(html, len, &p));
    CHECK(strstr(html, "<h2>Coherence</h2>") != NULL);
    CHECK(strstr(html, "<th scope=\"col\">u_mass</th><th scope=\"col\">c_v</th>") != NULL);
    CHECK(strstr(html, "<th scope=\"row\">mean</th><td class=\"num\">-1.2500</td>"
                       "<td class=\"num\">0.6250</td>") != NULL);
    CHECK(strstr(html, "<th scope=\"row\">0</th><td class=\"num\">-0.5000</td>"
                       "<td class=\"num\">0.7500</td>") != NULL);
    CHECK(strstr(html, "<th scope=\"row\">1</th><td class=\"num\">-2.0000</td>"
                       "<td class=\"num\">n/a</td>") != NULL);
    tm_free(html);

    REQUIRE(tm_report_render(&j, NULL, 0, result, strlen(result), NULL, &html, &len, &e) == TM_OK);
    CHECK(strstr(html, "Coherence") == NULL);
    tm_free(html);
}

TM_TEST(report_allocation_failures_fail_cleanly)
{
    tm_api_init();
    struct tm_job_record j;
    job_init(&j);
    long n;
    for (n = 1; n < 20000; n++) {
        char *html = NULL;
        size_t len;
        struct tm_api_error e;
        tm_testalloc_fail_at(n);
        tm_status st =
            tm_report_render(&j, spec, strlen(spec), result, strlen(result), NULL, &html, &len, &e);
        tm_free(html);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK)
            break;
        CHECK_INT_EQ(st, TM_ENOMEM);
    }
    CHECK(n > 1 && n < 20000);
    tm_alloc_set_methods(NULL);
}
