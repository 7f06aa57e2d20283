/*
 * report.c - the job report page (see report.h).
 */
#include "api/report.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/jbuf.h"
#include "api/json.h"
#include "api/svg.h"
#include "core/alloc.h"

/* The page holds the charts (a few hundred KB at most) and the topics. */
#define REPORT_CAP (32u << 20)

static const char style[] =
    "body{font-family:Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fff}"
    "main{max-width:980px;margin:0 auto;padding:16px}"
    "h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;"
    "border-bottom:1px solid #ddd}"
    ".meta{color:#555}table{border-collapse:collapse;margin:.5em 0}"
    "th,td{text-align:left;padding:3px 10px 3px 0;vertical-align:top}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tbody tr{border-top:1px solid #eee}figure{margin:1em 0}"
    "figure svg{max-width:100%;height:auto}figcaption{color:#555;font-size:.9em}"
    "pre{background:#f6f6f6;padding:8px;overflow:auto}"
    "footer{margin-top:2em;color:#777;font-size:.85em}";

static void text(struct tm_jbuf *b, const char *s)
{
    tm_svg_escape(b, s, strlen(s));
}

/* "2026-12-07 08:12:03 UTC", or "-" for 0 (not yet). */
static void put_time(struct tm_jbuf *b, double unix_s)
{
    if (unix_s <= 0) {
        tm_jbuf_puts(b, "-");
        return;
    }
    time_t t = (time_t)unix_s;
    struct tm tmv;
    char buf[40];
    if (gmtime_r(&t, &tmv) && strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tmv))
        tm_jbuf_puts(b, buf);
}

static double number(const cJSON *o, const char *key, double otherwise)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : otherwise;
}

/* A table row: a header cell and a number. */
static void row_number(struct tm_jbuf *b, const char *name, const char *fmt, double v)
{
    tm_jbuf_puts(b, "<tr><th scope=\"row\">");
    text(b, name);
    tm_jbuf_puts(b, "</th><td class=\"num\">");
    tm_jbuf_printf(b, fmt, v);
    tm_jbuf_puts(b, "</td></tr>\n");
}

static void topics_table(struct tm_jbuf *b, const cJSON *root)
{
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(root, "topics"), *t;
    tm_jbuf_puts(b, "<h2>Topics</h2>\n<table><thead><tr><th scope=\"col\">Topic</th>"
                    "<th scope=\"col\">Top words (weight)</th></tr></thead><tbody>\n");
    int i = 0;
    cJSON_ArrayForEach(t, topics)
    {
        tm_jbuf_printf(b, "<tr><th scope=\"row\">%d</th><td>", (int)number(t, "index", i));
        const cJSON *w;
        int j = 0;
        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(t, "words"))
        {
            const cJSON *term = cJSON_GetObjectItemCaseSensitive(w, "term");
            tm_jbuf_puts(b, j++ ? ", " : "");
            if (cJSON_IsString(term))
                text(b, term->valuestring);
            else
                tm_jbuf_printf(b, "#%d", (int)number(w, "index", -1));
            tm_jbuf_printf(b, " <span class=\"meta\">(%.3g)</span>", number(w, "weight", 0));
        }
        tm_jbuf_puts(b, "</td></tr>\n");
        i++;
    }
    tm_jbuf_puts(b, "</tbody></table>\n");
}

/* A coherence score, or "n/a" for null (gensim's NaN or Inf). */
static void put_score(struct tm_jbuf *b, const cJSON *x)
{
    if (cJSON_IsNumber(x))
        tm_jbuf_printf(b, "%.4f", x->valuedouble);
    else
        tm_jbuf_puts(b, "n/a");
}

/* The result's "coherence" ({"u_mass": {"mean", "per_topic"}, ...}), when
 * the spec asked for it: a row of means, then a row per topic, a column
 * per measure. */
static void coherence_section(struct tm_jbuf *b, const cJSON *root)
{
    const cJSON *coh = cJSON_GetObjectItemCaseSensitive(root, "coherence"), *m;
    if (!cJSON_IsObject(coh) || !coh->child)
        return;
    tm_jbuf_puts(b, "<h2>Coherence</h2>\n<p class=\"meta\">gensim's measures over the "
                    "vectorizer's tokens; higher is more coherent, n/a where the score is "
                    "undefined.</p>\n<table><thead><tr><th scope=\"col\">Topic</th>");
    cJSON_ArrayForEach(m, coh)
    {
        tm_jbuf_puts(b, "<th scope=\"col\">");
        text(b, m->string ? m->string : "?");
        tm_jbuf_puts(b, "</th>");
    }
    tm_jbuf_puts(b, "</tr></thead><tbody>\n<tr><th scope=\"row\">mean</th>");
    cJSON_ArrayForEach(m, coh)
    {
        tm_jbuf_puts(b, "<td class=\"num\">");
        put_score(b, cJSON_GetObjectItemCaseSensitive(m, "mean"));
        tm_jbuf_puts(b, "</td>");
    }
    tm_jbuf_puts(b, "</tr>\n");
    int k = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(coh->child, "per_topic"));
    for (int t = 0; t < k; t++) {
        tm_jbuf_printf(b, "<tr><th scope=\"row\">%d</th>", t);
        cJSON_ArrayForEach(m, coh)
        {
            tm_jbuf_puts(b, "<td class=\"num\">");
            put_score(b, cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "per_topic"), t));
            tm_jbuf_puts(b, "</td>");
        }
        tm_jbuf_puts(b, "</tr>\n");
    }
    tm_jbuf_puts(b, "</tbody></table>\n");
}

static const struct {
    const char *name, *caption;
} charts[] = {
    {"topics", "Each topic's top words; bar length is the word's weight in the topic."},
    {"singular_values", "Singular values by component, and the cumulative share of the "
                        "variance they explain."},
    {"error_trace", "Reconstruction error after each iteration of the solver."},
    {"document_topics", "Topic weights of the first documents (rows) for each topic (columns)."},
    {"sweep", "Reconstruction error for each number of topics the job tried; the dashed line "
              "marks the suggested one, whose model this report shows."},
};

static tm_status plots_section(struct tm_jbuf *b, const char *result, size_t len,
                               const struct tm_plot_doc_topics *dt, struct tm_api_error *e)
{
    tm_jbuf_puts(b, "<h2>Plots</h2>\n");
    for (size_t i = 0; i < sizeof(charts) / sizeof(charts[0]); i++) {
        char *svg = NULL;
        size_t n = 0;
        tm_status s = tm_plot_render(charts[i].name, result, len, dt, &svg, &n, e);
        if (s == TM_ENOTFOUND) /* no data for it: this job has no such chart */
            continue;
        if (s)
            return s;
        tm_jbuf_puts(b, "<figure>\n");
        tm_jbuf_put(b, svg, n);
        tm_jbuf_puts(b, "<figcaption>");
        text(b, charts[i].caption);
        tm_jbuf_puts(b, "</figcaption></figure>\n");
        tm_free(svg);
    }
    tm_api_error_clear(e);
    return TM_OK;
}

static void fit_section(struct tm_jbuf *b, const cJSON *root)
{
    tm_jbuf_puts(b, "<h2>Fit</h2>\n<table><tbody>\n");
    if (cJSON_GetObjectItemCaseSensitive(root, "reconstruction_error"))
        row_number(b, "reconstruction error", "%.10g", number(root, "reconstruction_error", 0));
    if (cJSON_GetObjectItemCaseSensitive(root, "n_iter"))
        row_number(b, "iterations", "%.0f", number(root, "n_iter", 0));
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(root, "singular_values"), *x;
    if (cJSON_IsArray(sv)) {
        tm_jbuf_puts(b, "<tr><th scope=\"row\">singular values</th><td>");
        int j = 0;
        cJSON_ArrayForEach(x, sv) tm_jbuf_printf(b, "%s%.6g", j++ ? ", " : "", x->valuedouble);
        tm_jbuf_puts(b, "</td></tr>\n");
    }
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(root, "device");
    if (cJSON_IsString(dev)) {
        tm_jbuf_puts(b, "<tr><th scope=\"row\">device</th><td>");
        text(b, dev->valuestring);
        tm_jbuf_puts(b, "</td></tr>\n");
    }
    tm_jbuf_puts(b, "</tbody></table>\n<h2>Timings</h2>\n<table><thead><tr>"
                    "<th scope=\"col\">Stage</th><th scope=\"col\">Seconds</th></tr></thead>"
                    "<tbody>\n");
    const cJSON *timings = cJSON_GetObjectItemCaseSensitive(root, "timings"), *t;
    cJSON_ArrayForEach(t, timings) if (cJSON_IsNumber(t) && t->string)
        row_number(b, t->string, "%.3f", t->valuedouble);
    tm_jbuf_puts(b, "</tbody></table>\n");
}

/* The spec, pretty-printed. */
static tm_status spec_section(struct tm_jbuf *b, const char *spec, size_t len,
                              struct tm_api_error *e)
{
    if (!spec)
        return TM_OK;
    struct tm_json_doc doc;
    tm_status s = tm_json_parse(&doc, spec, len, e);
    /* Inline documents are the corpus, not the spec: counted, not shown. */
    cJSON *docs = s ? NULL : cJSON_GetObjectItemCaseSensitive(doc.root, "documents");
    if (cJSON_IsArray(docs)) {
        char note[64];
        snprintf(note, sizeof(note), "(%d inline documents, not shown)", cJSON_GetArraySize(docs));
        cJSON *str = cJSON_CreateString(note);
        if (!str || !cJSON_ReplaceItemInObjectCaseSensitive(doc.root, "documents", str)) {
            cJSON_Delete(str);
            s = tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
        }
    }
    char *pretty = s ? NULL : cJSON_Print(doc.root);
    if (!s && !pretty)
        s = tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    if (!s) {
        tm_jbuf_puts(b, "<h2>Spec</h2>\n<pre>");
        text(b, pretty);
        tm_jbuf_puts(b, "</pre>\n");
    }
    tm_free(pretty);
    tm_json_release(&doc);
    return s;
}

tm_status tm_report_render(const struct tm_job_record *job, const char *spec, size_t spec_len,
                           const char *result, size_t result_len,
                           const struct tm_plot_doc_topics *dt, char **html, size_t *html_len,
                           struct tm_api_error *e)
{
    *html = NULL;
    *html_len = 0;
    tm_api_error_clear(e);
    struct tm_json_doc doc;
    tm_status s = tm_json_parse_stored_object(&doc, result, result_len, "result", e);
    if (s)
        return s;
    const cJSON *root = doc.root;
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    const char *m = cJSON_IsString(method) ? method->valuestring : job->method;
    int k = (int)number(root, "n_topics", 0);
    struct tm_jbuf b;
    tm_jbuf_init(&b, REPORT_CAP);
    tm_jbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>"
                     "<title>topicd report: ");
    text(&b, job->id);
    tm_jbuf_puts(&b, "</title><style>");
    tm_jbuf_puts(&b, style);
    tm_jbuf_puts(&b, "</style></head>\n<body><main>\n<h1>Topic model ");
    text(&b, job->id);
    tm_jbuf_puts(&b, "</h1>\n<p class=\"meta\">");
    text(&b, m);
    tm_jbuf_printf(&b,
                   ", %d topics; %.0f documents, %.0f terms, %.0f stored values; "
                   "submitted ",
                   k, number(root, "n_documents", 0), number(root, "n_features", 0),
                   number(root, "nnz", 0));
    put_time(&b, job->created_at);
    tm_jbuf_puts(&b, ", finished ");
    put_time(&b, job->finished_at);
    if (job->corpus_id[0]) {
        tm_jbuf_puts(&b, "; corpus ");
        text(&b, job->corpus_id);
    }
    tm_jbuf_puts(&b, "</p>\n");
    topics_table(&b, root);
    coherence_section(&b, root);
    s = plots_section(&b, result, result_len, dt, e);
    if (!s) {
        fit_section(&b, root);
        s = spec_section(&b, spec, spec_len, e);
    }
    tm_json_release(&doc);
    if (s) {
        tm_jbuf_release(&b);
        return s;
    }
    tm_jbuf_puts(&b, "<footer>Made by topicd from the job's stored result; the same numbers as "
                     "GET /v1/jobs/");
    text(&b, job->id);
    tm_jbuf_puts(&b, "/result.</footer>\n</main></body></html>\n");
    tm_status bs;
    *html = tm_jbuf_detach(&b, html_len, &bs);
    if (!*html)
        return tm_api_errorf(e, bs, NULL, -1, "%s",
                             bs == TM_ENOMEM ? "out of memory" : "the report is too large");
    return TM_OK;
}
