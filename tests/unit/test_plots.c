/* test_plots.c - the SVG charts: well-formed XML (read back by expat),
 * titles for screen readers, marks where the data puts them, escaping of
 * hostile terms, the caps, clear errors for plots a job has no data for,
 * nice axis scales, and allocation failures. */
#include <expat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json.h"
#include "api/plots.h"
#include "api/svg.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

/* What the reader found in an SVG document. */
struct svg_seen {
    int depth, root_is_svg, root_has_xmlns, first_child_is_title;
    int n_elements, n_circles, n_rects, n_topic_groups;
    char title[256];
    int in_title;
    char text[4096]; /* all <text> character data, '|' between elements */
    int in_text;
    double polyline_y[512]; /* the first polyline's y coordinates */
    int n_polyline_y, n_polylines;
    double rect_w[512]; /* widths of rects with height 12 (topic bars) */
    int n_rect_w;
};

static const char *attr(const char **atts, const char *name)
{
    for (int i = 0; atts[i]; i += 2)
        if (!strcmp(atts[i], name))
            return atts[i + 1];
    return NULL;
}

/* The y of each "x,y" pair of a points attribute. */
static void read_points(struct svg_seen *s, const char *p)
{
    double x, y;
    int used;
    while (s->n_polyline_y < 512 && sscanf(p, "%lf,%lf%n", &x, &y, &used) == 2) {
        s->polyline_y[s->n_polyline_y++] = y;
        p += used;
        while (*p == ' ')
            p++;
    }
}

static void on_start(void *ctx, const char *name, const char **atts)
{
    struct svg_seen *s = ctx;
    if (s->depth == 0) {
        s->root_is_svg = !strcmp(name, "svg");
        const char *ns = attr(atts, "xmlns");
        s->root_has_xmlns = ns && !strcmp(ns, "http://www.w3.org/2000/svg");
    }
    if (s->depth == 1 && s->n_elements == 1)
        s->first_child_is_title = !strcmp(name, "title");
    s->n_elements++;
    s->depth++;
    if (!strcmp(name, "title") && s->depth == 2)
        s->in_title = 1;
    if (!strcmp(name, "text"))
        s->in_text = 1;
    if (!strcmp(name, "circle"))
        s->n_circles++;
    if (!strcmp(name, "rect")) {
        s->n_rects++;
        const char *h = attr(atts, "height"), *w = attr(atts, "width");
        if (h && w && atof(h) == 12.0 && s->n_rect_w < 512)
            s->rect_w[s->n_rect_w++] = atof(w);
    }
    if (!strcmp(name, "g") && attr(atts, "class") && !strcmp(attr(atts, "class"), "topic"))
        s->n_topic_groups++;
    if (!strcmp(name, "polyline") && s->n_polylines++ == 0 && attr(atts, "points"))
        read_points(s, attr(atts, "points"));
}

static void on_end(void *ctx, const char *name)
{
    struct svg_seen *s = ctx;
    s->depth--;
    if (!strcmp(name, "title"))
        s->in_title = 0;
    if (!strcmp(name, "text") && s->in_text) {
        s->in_text = 0;
        size_t n = strlen(s->text);
        if (n + 1 < sizeof(s->text))
            strcat(s->text, "|");
    }
}

static void on_chars(void *ctx, const char *data, int len)
{
    struct svg_seen *s = ctx;
    char *dst = s->in_title ? s->title : s->in_text ? s->text : NULL;
    size_t size = s->in_title ? sizeof(s->title) : sizeof(s->text);
    if (!dst)
        return;
    size_t n = strlen(dst);
    if (n + (size_t)len < size) {
        memcpy(dst + n, data, (size_t)len);
        dst[n + (size_t)len] = 0;
    }
}

/* 1 when svg is well-formed XML; fills *s. */
static int read_svg(const char *svg, size_t len, struct svg_seen *s)
{
    memset(s, 0, sizeof(*s));
    XML_Parser p = XML_ParserCreate("UTF-8");
    if (!p)
        return 0;
    XML_SetUserData(p, s);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_chars);
    int ok = XML_Parse(p, svg, (int)len, 1) == XML_STATUS_OK;
    if (!ok)
        fprintf(stderr, "expat: %s at line %lu\n", XML_ErrorString(XML_GetErrorCode(p)),
                (unsigned long)XML_GetCurrentLineNumber(p));
    XML_ParserFree(p);
    return ok && s->root_is_svg && s->root_has_xmlns && s->first_child_is_title;
}

/* An SVD result as api/result.c writes one (the members the plots read),
 * with terms that need escaping or repair. */
static const char svd_result[] =
    "{\"n_documents\":4,\"n_features\":5,\"method\":\"svd\",\"n_topics\":3,"
    "\"topics\":[{\"index\":0,\"words\":[{\"term\":\"a<b&c\",\"index\":0,\"weight\":0.9},"
    "{\"term\":\"caf\xc3\xa9\",\"index\":1,\"weight\":0.45},{\"term\":\"bell\\u0007\",\"index\":2,"
    "\"weight\":-0.3}]},"
    "{\"index\":1,\"words\":[{\"term\":\"\\\"q'\",\"index\":3,\"weight\":0.5}]},"
    "{\"index\":2,\"words\":[{\"index\":4,\"weight\":0.2}]}],"
    "\"singular_values\":[9.5,4.25,1.5],\"explained_variance_ratio\":[0.5,0.25,0.125],"
    "\"reconstruction_error\":1.25}";

static const char nmf_result[] =
    "{\"method\":\"nmf\",\"n_topics\":2,"
    "\"topics\":[{\"index\":0,\"words\":[{\"term\":\"x\",\"index\":0,\"weight\":4},"
    "{\"term\":\"y\",\"index\":1,\"weight\":2},{\"term\":\"z\",\"index\":2,\"weight\":1}]},"
    "{\"index\":1,\"words\":[{\"term\":\"w\",\"index\":3,\"weight\":3}]}],"
    "\"reconstruction_error\":0.5,\"n_iter\":4,\"error_trace\":[3.0,2.0,1.0,0.5]}";

static char *render(const char *name, const char *json, const struct tm_plot_doc_topics *dt,
                    size_t *len, struct tm_api_error *e)
{
    char *svg = NULL;
    if (tm_plot_render(name, json, strlen(json), dt, &svg, len, e))
        return NULL;
    return svg;
}

TM_TEST(plots_scree_is_valid_svg_with_points_where_the_values_are)
{
    tm_api_init();
    struct tm_api_error e;
    size_t len;
    char *svg = render("singular_values", svd_result, NULL, &len, &e);
    REQUIRE(svg);
    CHECK_INT_EQ(strlen(svg), len);
    struct svg_seen s;
    CHECK(read_svg(svg, len, &s));
    CHECK(strstr(s.title, "Singular values") != NULL);
    CHECK(strstr(svg, "<desc>") != NULL);
    CHECK(strstr(svg, "87.5% of the variance") != NULL); /* 0.5 + 0.25 + 0.125 */
    CHECK_INT_EQ(s.n_circles, 3);                        /* one per singular value */
    CHECK_INT_EQ(s.n_polylines, 2);                      /* values, cumulative variance */
    REQUIRE(s.n_polyline_y == 3);
    /* Larger values sit higher (smaller y), in proportion from the axis at 0. */
    CHECK(s.polyline_y[0] < s.polyline_y[1] && s.polyline_y[1] < s.polyline_y[2]);
    double axis0 = s.polyline_y[0] + (s.polyline_y[2] - s.polyline_y[0]) / (9.5 - 1.5) * 9.5;
    CHECK_NEAR((axis0 - s.polyline_y[1]) / (axis0 - s.polyline_y[0]), 4.25 / 9.5, 0.01);
    CHECK(strstr(s.text, "component") != NULL);
    CHECK(strstr(s.text, "singular value") != NULL);
    tm_free(svg);
}

TM_TEST(plots_error_trace_and_topics_from_an_nmf_result)
{
    tm_api_init();
    struct tm_api_error e;
    size_t len;
    char *svg = render("error_trace", nmf_result, NULL, &len, &e);
    REQUIRE(svg);
    struct svg_seen s;
    CHECK(read_svg(svg, len, &s));
    REQUIRE(s.n_polyline_y == 4);
    for (int i = 1; i < 4; i++) /* a falling error is a falling line */
        CHECK(s.polyline_y[i] > s.polyline_y[i - 1]);
    CHECK(strstr(s.text, "iteration") != NULL);
    tm_free(svg);

    svg = render("topics", nmf_result, NULL, &len, &e);
    REQUIRE(svg);
    CHECK(read_svg(svg, len, &s));
    CHECK_INT_EQ(s.n_topic_groups, 2);
    CHECK(strstr(s.text, "Topic 0|") != NULL);
    CHECK(strstr(s.text, "|x|") != NULL);
    tm_free(svg);
}

TM_TEST(plots_topic_bars_are_as_long_as_their_weights)
{
    tm_api_init();
    struct tm_api_error e;
    size_t len;
    char *svg = render("topics", nmf_result, NULL, &len, &e);
    REQUIRE(svg);
    /* Bars are ROW_H - 4 = 12 high; topic 0's are 4, 2, 1, topic 1's 3. */
    struct svg_seen s;
    CHECK(read_svg(svg, len, &s));
    REQUIRE(s.n_rect_w == 4);
    CHECK(s.rect_w[0] > 0);
    CHECK_NEAR(s.rect_w[1] / s.rect_w[0], 0.5, 0.01);
    CHECK_NEAR(s.rect_w[2] / s.rect_w[0], 0.25, 0.01);
    CHECK_NEAR(s.rect_w[3], s.rect_w[0], 0.01); /* each topic to its own largest */
    tm_free(svg);
}

TM_TEST(plots_escape_terms_and_keep_the_xml_valid)
{
    tm_api_init();
    struct tm_api_error e;
    size_t len;
    char *svg = render("topics", svd_result, NULL, &len, &e);
    REQUIRE(svg);
    struct svg_seen s;
    CHECK(read_svg(svg, len, &s)); /* '<', '&', '"', a BEL: still XML */
    CHECK(strstr(s.text, "|a<b&c|") != NULL);
    CHECK(strstr(s.text, "|caf\xc3\xa9|") != NULL);
    CHECK(strstr(s.text, "|bell\xef\xbf\xbd|") != NULL); /* BEL is not XML: U+FFFD */
    CHECK(strstr(s.text, "|\"q'|") != NULL);
    CHECK(strstr(s.text, "|#4|") != NULL); /* no term: its index */
    CHECK_INT_EQ(s.n_topic_groups, 3);
    tm_free(svg);

    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    tm_svg_escape(&b, "ok\xff\xfe<", 5); /* invalid UTF-8 bytes */
    CHECK_STR_EQ(b.data, "ok\xef\xbf\xbd\xef\xbf\xbd&lt;");
    tm_jbuf_release(&b);
    tm_jbuf_init(&b, 0);
    tm_svg_text(&b, 1, 2, NULL, "abcdef", 3);
    CHECK_STR_EQ(b.data, "<text x=\"1.0\" y=\"2.0\">abc\xe2\x80\xa6</text>\n");
    tm_jbuf_release(&b);
}

TM_TEST(plots_heat_map_draws_one_cell_per_weight_up_to_the_caps)
{
    tm_api_init();
    enum { N = 60, K = 3 };
    double w[N * K];
    for (int i = 0; i < N * K; i++)
        w[i] = (i % 7) / 7.0;
    const char *ids[N] = {"doc<a>"};
    struct tm_plot_doc_topics dt = {w, ids, N, K, 1000};
    struct tm_api_error e;
    size_t len;
    char *svg = render("document_topics", nmf_result, &dt, &len, &e);
    REQUIRE(svg);
    struct svg_seen s;
    CHECK(read_svg(svg, len, &s));
    /* 50 documents x 3 topics, the background, and the 20-step colour key. */
    CHECK_INT_EQ(s.n_rects, TM_PLOT_MAX_DOCUMENTS * K + 1 + 20);
    CHECK(strstr(s.text, "|doc<a>|") != NULL);
    CHECK(strstr(s.text, "|document 1|") != NULL);
    CHECK(strstr(svg, "first 50 of 1000 documents") != NULL);
    tm_free(svg);

    /* The darkest and lightest cells are the ramp's two ends. */
    char lo[8], hi[8];
    tm_svg_ramp(0, lo);
    tm_svg_ramp(1, hi);
    CHECK_STR_EQ(lo, "#440154");
    CHECK_STR_EQ(hi, "#fde725");
    svg = render("document_topics", nmf_result, &dt, &len, &e);
    REQUIRE(svg);
    CHECK(strstr(svg, "fill=\"#440154\"><title>topic 0: 0<") != NULL); /* w[0] = 0 */
    tm_free(svg);
}

TM_TEST(plots_cap_the_topics_drawn)
{
    tm_api_init();
    char json[16384];
    int at = snprintf(json, sizeof(json), "{\"method\":\"nmf\",\"topics\":[");
    for (int i = 0; i < TM_PLOT_MAX_TOPICS + 10; i++)
        at += snprintf(json + at, sizeof(json) - (size_t)at,
                       "%s{\"index\":%d,\"words\":[{\"term\":\"t%d\",\"index\":%d,\"weight\":1}]}",
                       i ? "," : "", i, i, i);
    snprintf(json + at, sizeof(json) - (size_t)at, "]}");
    struct tm_api_error e;
    size_t len;
    char *svg = render("topics", json, NULL, &len, &e);
    REQUIRE(svg);
    struct svg_seen s;
    CHECK(read_svg(svg, len, &s));
    CHECK_INT_EQ(s.n_topic_groups, TM_PLOT_MAX_TOPICS);
    CHECK(strstr(svg, "(the first ones)") != NULL);
    tm_free(svg);
}

TM_TEST(plots_say_what_a_job_has_no_data_for)
{
    tm_api_init();
    struct tm_api_error e;
    size_t len;
    CHECK(render("singular_values", nmf_result, NULL, &len, &e) == NULL);
    CHECK_INT_EQ(e.status, TM_ENOTFOUND);
    CHECK(strstr(e.message, "only SVD jobs") != NULL);
    CHECK(render("error_trace", svd_result, NULL, &len, &e) == NULL);
    CHECK_INT_EQ(e.status, TM_ENOTFOUND);
    CHECK(render("document_topics", nmf_result, NULL, &len, &e) == NULL);
    CHECK_INT_EQ(e.status, TM_ENOTFOUND);
    CHECK(render("pie", nmf_result, NULL, &len, &e) == NULL);
    CHECK_INT_EQ(e.status, TM_ENOTFOUND);
    CHECK(strstr(e.message, "error_trace") != NULL); /* lists the plots */
    CHECK(render("topics", "{\"topics\":", NULL, &len, &e) == NULL);
    CHECK_INT_EQ(e.status, TM_EPARSE);
    CHECK(render("singular_values", "{\"singular_values\":[1,\"x\"]}", NULL, &len, &e) == NULL);
    CHECK_INT_EQ(e.status, TM_EPARSE);
    CHECK(tm_plot_known("topics") && !tm_plot_known("topics.svg"));
}

TM_TEST(plots_nice_scales)
{
    struct tm_svg_scale s;
    tm_svg_scale_nice(&s, 0, 7.3, 6);
    CHECK_NEAR(s.lo, 0, 0);
    CHECK_NEAR(s.hi, 8, 1e-12);
    CHECK_INT_EQ(s.n_ticks, 5); /* 0 2 4 6 8 */
    CHECK_INT_EQ(s.decimals, 0);
    tm_svg_scale_nice(&s, 0.1234, 0.1567, 5);
    CHECK(s.lo <= 0.1234 && s.hi >= 0.1567);
    CHECK(s.n_ticks >= 3 && s.n_ticks <= TM_SVG_MAX_TICKS);
    CHECK_INT_EQ(s.decimals, 2); /* step 0.01 */
    char label[32];
    tm_svg_tick_label(&s, s.ticks[1], label, sizeof(label));
    CHECK_STR_EQ(label, "0.13");
    tm_svg_scale_nice(&s, 5, 5, 6); /* one value: a range around it */
    CHECK(s.lo < 5 && s.hi > 5);
    tm_svg_scale_nice(&s, NAN, INFINITY, 6);
    CHECK(isfinite(s.lo) && isfinite(s.hi) && s.hi > s.lo);
    for (int i = 1; i < s.n_ticks; i++)
        CHECK(s.ticks[i] > s.ticks[i - 1]);
    CHECK_NEAR(tm_svg_scale_map(&s, s.lo, 10, 20), 10, 1e-12);
    CHECK_NEAR(tm_svg_scale_map(&s, s.hi, 10, 20), 20, 1e-12);
}

TM_TEST(plots_allocation_failures_fail_cleanly)
{
    tm_api_init();
    static const char *names[] = {"singular_values", "topics"};
    for (int p = 0; p < 2; p++) {
        for (long n = 1; n < 10000; n++) {
            struct tm_api_error e;
            char *svg = NULL;
            size_t len;
            tm_testalloc_fail_at(n);
            tm_status st =
                tm_plot_render(names[p], svd_result, strlen(svd_result), NULL, &svg, &len, &e);
            tm_free(svg);
            tm_testalloc_reset();
            CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
            if (st == TM_OK)
                break;
            CHECK_INT_EQ(st, TM_ENOMEM);
        }
    }
    tm_alloc_set_methods(NULL);
}

/* A sweep (core/sweep.h) as api/result.c writes one. */
static const char sweep_result[] =
    "{\"method\":\"nmf\",\"n_topics\":4,\"topics\":[],\"reconstruction_error\":2.0,"
    "\"sweep\":[{\"n_topics\":2,\"reconstruction_error\":9.0,\"n_iter\":5,\"seconds\":0.1},"
    "{\"n_topics\":3,\"reconstruction_error\":6.0,\"n_iter\":5,\"seconds\":0.1},"
    "{\"n_topics\":4,\"reconstruction_error\":2.0,\"n_iter\":5,\"seconds\":0.1},"
    "{\"n_topics\":6,\"reconstruction_error\":1.5,\"n_iter\":5,\"seconds\":0.1},"
    "{\"n_topics\":8,\"reconstruction_error\":1.0,\"n_iter\":5,\"seconds\":0.1}],"
    "\"sweep_rule\":\"knee\"}";

TM_TEST(plots_sweep_draws_the_error_by_k_and_marks_the_suggestion)
{
    tm_api_init();
    struct tm_api_error e;
    size_t len;
    char *svg = render("sweep", sweep_result, NULL, &len, &e);
    REQUIRE(svg);
    struct svg_seen s;
    CHECK(read_svg(svg, len, &s));
    CHECK(strstr(s.title, "number of topics") != NULL);
    CHECK(strstr(svg, "suggested k = 4 by the rule &quot;knee&quot;") != NULL); /* the desc */
    CHECK(strstr(s.text, "suggested k = 4 (knee)") != NULL);
    CHECK(strstr(s.text, "number of topics k") != NULL);
    CHECK_INT_EQ(s.n_polylines, 1);
    CHECK_INT_EQ(s.n_circles, 6); /* a dot per k, a ring on the suggested one */
    REQUIRE(s.n_polyline_y == 5);
    for (int i = 1; i < 5; i++) /* a falling error is a falling line */
        CHECK(s.polyline_y[i] > s.polyline_y[i - 1]);
    /* Heights in proportion to the errors: (9 - 6) / (9 - 1). */
    CHECK_NEAR((s.polyline_y[1] - s.polyline_y[0]) / (s.polyline_y[4] - s.polyline_y[0]), 3.0 / 8.0,
               0.01);
    tm_free(svg);

    /* Coherence, when each k has it, is a second series. */
    const char coh[] = "{\"method\":\"nmf\",\"n_topics\":3,\"sweep\":["
                       "{\"n_topics\":2,\"reconstruction_error\":3.0,\"coherence\":0.1,\"n_iter\":"
                       "1,\"seconds\":0},"
                       "{\"n_topics\":3,\"reconstruction_error\":2.0,\"coherence\":0.4,\"n_iter\":"
                       "1,\"seconds\":0},"
                       "{\"n_topics\":4,\"reconstruction_error\":1.5,\"coherence\":0.2,\"n_iter\":"
                       "1,\"seconds\":0}],"
                       "\"sweep_rule\":\"best_coherence\"}";
    svg = render("sweep", coh, NULL, &len, &e);
    REQUIRE(svg);
    CHECK(read_svg(svg, len, &s));
    CHECK_INT_EQ(s.n_polylines, 2);
    CHECK_INT_EQ(s.n_circles, 3 + 3 + 1);
    CHECK(strstr(s.text, "mean coherence") != NULL);
    CHECK(strstr(s.text, "suggested k = 3 (best_coherence)") != NULL);
    tm_free(svg);

    /* Not a sweep: no data (404 no_plot_data); a damaged one: EPARSE. */
    CHECK(render("sweep", nmf_result, NULL, &len, &e) == NULL);
    CHECK_INT_EQ(e.status, TM_ENOTFOUND);
    CHECK(strstr(e.message, "not a sweep") != NULL);
    CHECK(render("sweep", "{\"n_topics\":2,\"sweep\":[{\"n_topics\":\"2\"}]}", NULL, &len, &e) ==
          NULL);
    CHECK_INT_EQ(e.status, TM_EPARSE);
    CHECK(render("sweep", "{\"n_topics\":2,\"sweep\":{}}", NULL, &len, &e) == NULL);
    CHECK_INT_EQ(e.status, TM_EPARSE);
    CHECK(tm_plot_known("sweep"));
}
