/*
 * plots.c - the charts of plots.h, drawn with api/svg.h.
 *
 * The result document is topicd's own output (api/result.h), read with
 * tm_json_parse: a member of the wrong type means a damaged store, answered
 * TM_EPARSE, never a crash.
 */
#include "api/plots.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/jbuf.h"
#include "api/json.h"
#include "api/svg.h"
#include "core/alloc.h"

#define WIDTH 640
/* An SVG is text the size of its marks: a few hundred KB at most here. */
#define SVG_CAP (8u << 20)

static const char *const plot_names[] = {"singular_values", "error_trace", "topics",
                                         "document_topics", "sweep"};

int tm_plot_known(const char *name)
{
    for (size_t i = 0; i < sizeof(plot_names) / sizeof(plot_names[0]); i++)
        if (!strcmp(name, plot_names[i]))
            return 1;
    return 0;
}

const char *tm_plot_names(void)
{
    return "singular_values, error_trace, topics, document_topics, sweep";
}

/* The numbers of array member key of root into *v (owned, tm_free), *n of
 * them; *v NULL and *n 0 when root has no such member. */
static tm_status numbers(const cJSON *root, const char *key, double **v, int64_t *n,
                         struct tm_api_error *e)
{
    *v = NULL;
    *n = 0;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!a)
        return TM_OK;
    if (!cJSON_IsArray(a))
        return tm_api_errorf(e, TM_EPARSE, key, -1, "the stored result's %s is not an array", key);
    int count = cJSON_GetArraySize(a);
    if (!count)
        return TM_OK;
    if (!(*v = tm_malloc((size_t)count * sizeof(double))))
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    const cJSON *x;
    cJSON_ArrayForEach(x, a)
    {
        if (!cJSON_IsNumber(x)) {
            tm_free(*v);
            *v = NULL;
            return tm_api_errorf(e, TM_EPARSE, key, -1, "the stored result's %s holds a non-number",
                                 key);
        }
        (*v)[(*n)++] = x->valuedouble;
    }
    return TM_OK;
}

static const char *method_of(const cJSON *root)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "method");
    return cJSON_IsString(m) ? m->valuestring : "?";
}

static void circle(struct tm_jbuf *b, double x, double y, const char *colour)
{
    tm_jbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x, y, colour);
}

/* A legend entry: a short line in colour (dashed or not) and its label. */
static void legend(struct tm_jbuf *b, double x, double y, const char *colour, int dashed,
                   const char *label)
{
    tm_jbuf_printf(b,
                   "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"2\"%s/>\n",
                   x, y, x + 24, y, colour, dashed ? " stroke-dasharray=\"6 4\"" : "");
    tm_svg_text(b, x + 30, y + 4, "fill=\"#222222\"", label, 0);
}

/* A polyline through (x[i], y[i]) mapped through the scales into f. */
static void series(struct tm_jbuf *b, const struct tm_svg_frame *f, const struct tm_svg_scale *sx,
                   const struct tm_svg_scale *sy, const double *y, int64_t n, const char *colour,
                   int dashed, int dots)
{
    double x0 = f->left, x1 = f->left + f->width, y0 = f->top + f->height, y1 = f->top;
    tm_jbuf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                   colour, dashed ? " stroke-dasharray=\"6 4\"" : "");
    for (int64_t i = 0; i < n; i++)
        tm_jbuf_printf(b, "%s%.1f,%.1f", i ? " " : "",
                       tm_svg_scale_map(sx, (double)(i + 1), x0, x1),
                       tm_svg_scale_map(sy, y[i], y0, y1));
    tm_jbuf_puts(b, "\"/>\n");
    for (int64_t i = 0; dots && i < n; i++)
        circle(b, tm_svg_scale_map(sx, (double)(i + 1), x0, x1), tm_svg_scale_map(sy, y[i], y0, y1),
               colour);
}

static tm_status plot_singular_values(struct tm_jbuf *b, const cJSON *root, struct tm_api_error *e)
{
    double *sv = NULL, *evr = NULL;
    int64_t n = 0, n_evr = 0;
    tm_status s = numbers(root, "singular_values", &sv, &n, e);
    if (!s)
        s = numbers(root, "explained_variance_ratio", &evr, &n_evr, e);
    if (s)
        goto out;
    if (!n) {
        s = tm_api_errorf(e, TM_ENOTFOUND, NULL, -1,
                          "this job (%s) has no singular values: only SVD jobs do",
                          method_of(root));
        goto out;
    }
    if (n_evr != n)
        n_evr = 0;
    double max_sv = 0, total_evr = 0;
    for (int64_t i = 0; i < n; i++)
        max_sv = fmax(max_sv, sv[i]);
    for (int64_t i = 0; i < n_evr; i++) { /* cumulative, in place */
        total_evr += evr[i];
        evr[i] = total_evr;
    }
    char desc[320];
    int at = snprintf(desc, sizeof(desc), "%lld singular values, from %.4g down to %.4g",
                      (long long)n, sv[0], sv[n - 1]);
    if (n_evr)
        snprintf(desc + at, sizeof(desc) - (size_t)at,
                 "; together the components explain %.1f%% of the variance", total_evr * 100);
    const int height = 400;
    struct tm_svg_frame f = {80, 50, 480, 280};
    struct tm_svg_scale sx, sy, se;
    tm_svg_scale_nice(&sx, 1, (double)n, n < 10 ? (int)n : 10);
    tm_svg_scale_nice(&sy, 0, max_sv, 6);
    tm_svg_open(b, WIDTH, height, "Singular values (scree plot)", desc);
    tm_svg_axes(b, &f, &sx, &sy, "component", "singular value");
    series(b, &f, &sx, &sy, sv, n, tm_svg_colours[0], 0, n <= 100);
    legend(b, f.left, 24, tm_svg_colours[0], 0, "singular value");
    if (n_evr) {
        tm_svg_scale_nice(&se, 0, total_evr, 6);
        double xr = f.left + f.width, y0 = f.top + f.height;
        tm_jbuf_printf(
            b, "<path d=\"M%.1f %.1fV%.1f\" stroke=\"%s\" stroke-width=\"1\" fill=\"none\"/>\n", xr,
            f.top, y0, tm_svg_colours[1]);
        for (int i = 0; i < se.n_ticks; i++) {
            char label[32];
            double py = tm_svg_scale_map(&se, se.ticks[i], y0, f.top);
            tm_jbuf_printf(
                b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", xr,
                py, xr + 5, py, tm_svg_colours[1]);
            snprintf(label, sizeof(label), "%.0f%%", se.ticks[i] * 100);
            tm_svg_text(b, xr + 8, py + 4, "fill=\"#222222\"", label, 0);
        }
        char attrs[128];
        double cx = xr + 58, cy = f.top + f.height / 2;
        snprintf(attrs, sizeof(attrs),
                 "text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(90 %.1f %.1f)\"", cx,
                 cy);
        tm_svg_text(b, cx, cy, attrs, "cumulative explained variance", 0);
        series(b, &f, &sx, &se, evr, n_evr, tm_svg_colours[1], 1, 0);
        legend(b, f.left + 180, 24, tm_svg_colours[1], 1, "cumulative explained variance");
    }
    tm_svg_close(b);
out:
    tm_free(sv);
    tm_free(evr);
    return s;
}

static tm_status plot_error_trace(struct tm_jbuf *b, const cJSON *root, struct tm_api_error *e)
{
    double *t = NULL;
    int64_t n = 0;
    tm_status s = numbers(root, "error_trace", &t, &n, e);
    if (s)
        goto out;
    if (!n) {
        s = tm_api_errorf(e, TM_ENOTFOUND, NULL, -1,
                          "this job (%s) recorded no error per iteration: iterative NMF fits do",
                          method_of(root));
        goto out;
    }
    double lo = t[0], hi = t[0];
    for (int64_t i = 1; i < n; i++) {
        lo = fmin(lo, t[i]);
        hi = fmax(hi, t[i]);
    }
    char desc[256];
    snprintf(desc, sizeof(desc), "Reconstruction error over %lld iterations, from %.6g to %.6g",
             (long long)n, t[0], t[n - 1]);
    const int height = 380;
    struct tm_svg_frame f = {90, 30, 510, 280};
    struct tm_svg_scale sx, sy;
    tm_svg_scale_nice(&sx, 1, (double)(n > 1 ? n : 2), 8);
    tm_svg_scale_nice(&sy, lo, hi, 6);
    tm_svg_open(b, WIDTH, height, "Reconstruction error by iteration", desc);
    tm_svg_axes(b, &f, &sx, &sy, "iteration", "reconstruction error");
    series(b, &f, &sx, &sy, t, n, tm_svg_colours[0], 0, n <= 60);
    tm_svg_close(b);
out:
    tm_free(t);
    return s;
}

/* Panels of the topics plot. */
#define PANEL_COLS 3
#define PANEL_W (WIDTH / PANEL_COLS)
#define ROW_H 16
#define LABEL_W 92

static tm_status plot_topics(struct tm_jbuf *b, const cJSON *root, struct tm_api_error *e)
{
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(root, "topics");
    if (!cJSON_IsArray(topics))
        return tm_api_errorf(e, TM_EPARSE, "topics", -1, "the stored result has no topics");
    int k = cJSON_GetArraySize(topics), shown = k < TM_PLOT_MAX_TOPICS ? k : TM_PLOT_MAX_TOPICS;
    if (!k)
        return tm_api_errorf(e, TM_ENOTFOUND, NULL, -1, "this job has no topics");
    int words = 1; /* the most words any shown topic has, capped */
    const cJSON *t;
    int i = 0;
    cJSON_ArrayForEach(t, topics)
    {
        if (i++ == shown)
            break;
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "words");
        if (!cJSON_IsArray(w))
            return tm_api_errorf(e, TM_EPARSE, "topics", -1, "a stored topic has no words");
        int nw = cJSON_GetArraySize(w);
        words = nw > words ? (nw < TM_PLOT_MAX_WORDS ? nw : TM_PLOT_MAX_WORDS) : words;
    }
    const int panel_h = 26 + words * ROW_H + 12;
    const int rows = (shown + PANEL_COLS - 1) / PANEL_COLS;
    char desc[200];
    snprintf(desc, sizeof(desc), "The top %d words of %d topics%s, bar length the word's weight",
             words, shown, shown < k ? " (the first ones)" : "");
    tm_svg_open(b, WIDTH, rows * panel_h + 10, "Top words of each topic", desc);
    i = 0;
    cJSON_ArrayForEach(t, topics)
    {
        if (i == shown)
            break;
        double px = (i % PANEL_COLS) * PANEL_W + 6, py = (i / PANEL_COLS) * panel_h + 8;
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(t, "index");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "words");
        const char *colour = tm_svg_colours[i % (TM_SVG_N_COLOURS - 1)]; /* no black */
        char title[32];
        snprintf(title, sizeof(title), "Topic %d", cJSON_IsNumber(idx) ? idx->valueint : i);
        tm_jbuf_printf(b, "<g class=\"topic\"><title>%s</title>\n", title);
        tm_svg_text(b, px, py + 14, "font-weight=\"bold\" fill=\"#222222\"", title, 0);
        double max_abs = 0;
        int j = 0, any_negative = 0;
        const cJSON *word;
        cJSON_ArrayForEach(word, w)
        {
            if (j++ == words)
                break;
            const cJSON *wt = cJSON_GetObjectItemCaseSensitive(word, "weight");
            double v = cJSON_IsNumber(wt) ? wt->valuedouble : 0;
            max_abs = fmax(max_abs, fabs(v));
            any_negative |= v < 0;
        }
        /* Bars grow right from the label column; with negative weights
         * (SVD components) they grow both ways from the middle. */
        double bar_w = PANEL_W - LABEL_W - 22, zero = px + LABEL_W + (any_negative ? bar_w / 2 : 0);
        double scale = max_abs > 0 ? (any_negative ? bar_w / 2 : bar_w) / max_abs : 0;
        j = 0;
        cJSON_ArrayForEach(word, w)
        {
            if (j == words)
                break;
            const cJSON *term = cJSON_GetObjectItemCaseSensitive(word, "term");
            const cJSON *tidx = cJSON_GetObjectItemCaseSensitive(word, "index");
            const cJSON *wt = cJSON_GetObjectItemCaseSensitive(word, "weight");
            double v = cJSON_IsNumber(wt) ? wt->valuedouble : 0;
            /* A Matrix Market input has no vocabulary: the term's index. */
            char label[32];
            snprintf(label, sizeof(label), "#%d", cJSON_IsNumber(tidx) ? tidx->valueint : j);
            const char *shown_term = cJSON_IsString(term) ? term->valuestring : label;
            double y = py + 26 + j * ROW_H;
            tm_svg_text(b, px + LABEL_W - 4, y + 11, "text-anchor=\"end\" fill=\"#222222\"",
                        shown_term, 13);
            double len = fabs(v) * scale, x = v < 0 ? zero - len : zero;
            tm_jbuf_printf(b,
                           "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\">"
                           "<title>",
                           x, y + 2, len, ROW_H - 4, colour);
            tm_svg_escape(b, shown_term, strlen(shown_term));
            tm_jbuf_printf(b, ": %.4g</title></rect>\n", v);
            j++;
        }
        if (any_negative)
            tm_jbuf_printf(b,
                           "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                           "stroke=\"#444444\"/>\n",
                           zero, py + 26, zero, py + 26 + j * ROW_H);
        tm_jbuf_puts(b, "</g>\n");
        i++;
    }
    tm_svg_close(b);
    return TM_OK;
}

static tm_status plot_document_topics(struct tm_jbuf *b, const struct tm_plot_doc_topics *dt,
                                      struct tm_api_error *e)
{
    if (!dt || !dt->n || !dt->k || !dt->weights)
        return tm_api_errorf(e, TM_ENOTFOUND, NULL, -1,
                             "this job kept no document-topic weights to plot");
    int64_t rows = dt->n < TM_PLOT_MAX_DOCUMENTS ? dt->n : TM_PLOT_MAX_DOCUMENTS;
    int64_t cols = dt->k < TM_PLOT_MAX_TOPICS ? dt->k : TM_PLOT_MAX_TOPICS;
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double v = dt->weights[r * dt->k + c];
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
    if (!isfinite(lo) || !isfinite(hi))
        return tm_api_errorf(e, TM_ENUMERIC, "document_topics", -1,
                             "the weights hold a value that is not finite");
    const double left = 120, top = 44;
    const double cell_w = fmin(28, 480.0 / (double)cols), cell_h = 14;
    const double grid_h = (double)rows * cell_h;
    const int height = (int)(top + grid_h + 90);
    char desc[256];
    snprintf(desc, sizeof(desc),
             "Weights of %lld topics for the first %lld of %lld documents, from %.4g (dark) to "
             "%.4g (light)",
             (long long)cols, (long long)rows, (long long)dt->n_documents, lo, hi);
    tm_svg_open(b, WIDTH, height, "Topic weights of the first documents", desc);
    for (int64_t c = 0; c < cols; c++) {
        char label[24];
        snprintf(label, sizeof(label), "%lld", (long long)c);
        if (cols <= 30 || c % 5 == 0)
            tm_svg_text(b, left + (double)c * cell_w + cell_w / 2, top - 6,
                        "text-anchor=\"middle\" fill=\"#222222\" font-size=\"10\"", label, 0);
    }
    tm_svg_text(b, left + (double)cols * cell_w / 2, top - 24,
                "text-anchor=\"middle\" font-size=\"13\"", "topic", 0);
    double span = hi > lo ? hi - lo : 1;
    for (int64_t r = 0; r < rows; r++) {
        char label[40];
        const char *id = dt->ids ? dt->ids[r] : NULL;
        if (!id) {
            snprintf(label, sizeof(label), "document %lld", (long long)r);
            id = label;
        }
        double y = top + (double)r * cell_h;
        tm_svg_text(b, left - 6, y + cell_h - 3,
                    "text-anchor=\"end\" fill=\"#222222\" font-size=\"10\"", id, 18);
        for (int64_t c = 0; c < cols; c++) {
            double v = dt->weights[r * dt->k + c];
            char colour[8];
            tm_svg_ramp((v - lo) / span, colour);
            tm_jbuf_printf(b,
                           "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                           "<title>topic %lld: %.4g</title></rect>\n",
                           left + (double)c * cell_w, y, cell_w, cell_h, colour, (long long)c, v);
        }
    }
    /* The colour key: the ramp in 20 steps with its two ends labelled. */
    double ky = top + grid_h + 30;
    for (int i = 0; i < 20; i++) {
        char colour[8];
        tm_svg_ramp(i / 19.0, colour);
        tm_jbuf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n",
                       left + i * 12.0, ky, colour);
    }
    char label[40];
    snprintf(label, sizeof(label), "%.3g", lo);
    tm_svg_text(b, left, ky + 28, "text-anchor=\"start\" fill=\"#222222\"", label, 0);
    snprintf(label, sizeof(label), "%.3g", hi);
    tm_svg_text(b, left + 240, ky + 28, "text-anchor=\"end\" fill=\"#222222\"", label, 0);
    tm_svg_text(b, left + 252, ky + 10, "fill=\"#222222\"", "weight", 0);
    tm_svg_close(b);
    return TM_OK;
}

/* A polyline through (x[i], y[i]) with a dot at each point. */
static void xy_series(struct tm_jbuf *b, const struct tm_svg_frame *f,
                      const struct tm_svg_scale *sx, const struct tm_svg_scale *sy, const double *x,
                      const double *y, int64_t n, const char *colour, int dashed)
{
    double x0 = f->left, x1 = f->left + f->width, y0 = f->top + f->height, y1 = f->top;
    tm_jbuf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                   colour, dashed ? " stroke-dasharray=\"6 4\"" : "");
    for (int64_t i = 0; i < n; i++)
        tm_jbuf_printf(b, "%s%.1f,%.1f", i ? " " : "", tm_svg_scale_map(sx, x[i], x0, x1),
                       tm_svg_scale_map(sy, y[i], y0, y1));
    tm_jbuf_puts(b, "\"/>\n");
    for (int64_t i = 0; i < n; i++)
        circle(b, tm_svg_scale_map(sx, x[i], x0, x1), tm_svg_scale_map(sy, y[i], y0, y1), colour);
}

/* The sweep's member key of each point into v (n entries); 0 when a point
 * lacks it or it is not a number. */
static int sweep_member(const cJSON *sweep, const char *key, double *v)
{
    const cJSON *p;
    int64_t i = 0;
    cJSON_ArrayForEach(p, sweep)
    {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(p, key);
        if (!cJSON_IsNumber(x))
            return 0;
        v[i++] = x->valuedouble;
    }
    return 1;
}

static tm_status plot_sweep(struct tm_jbuf *b, const cJSON *root, struct tm_api_error *e)
{
    const cJSON *sweep = cJSON_GetObjectItemCaseSensitive(root, "sweep");
    if (!sweep)
        return tm_api_errorf(e, TM_ENOTFOUND, NULL, -1,
                             "this job (%s) is not a sweep: only a job whose model.n_topics is a "
                             "list or a range has one",
                             method_of(root));
    int n = cJSON_IsArray(sweep) ? cJSON_GetArraySize(sweep) : 0;
    const cJSON *chosen = cJSON_GetObjectItemCaseSensitive(root, "n_topics");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(root, "sweep_rule");
    if (!n || !cJSON_IsNumber(chosen))
        return tm_api_errorf(e, TM_EPARSE, "sweep", -1, "the stored result's sweep is damaged");
    double *k = tm_mallocarray((size_t)n, 3 * sizeof(double));
    if (!k)
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    double *err = k + n, *coh = k + 2 * n;
    tm_status s = TM_OK;
    if (!sweep_member(sweep, "n_topics", k) || !sweep_member(sweep, "reconstruction_error", err)) {
        s = tm_api_errorf(e, TM_EPARSE, "sweep", -1, "the stored result's sweep is damaged");
        goto out;
    }
    int has_coh = sweep_member(sweep, "coherence", coh);
    double lo = err[0], hi = err[0], clo = coh[0], chi = coh[0], pick_err = NAN;
    for (int i = 0; i < n; i++) {
        lo = fmin(lo, err[i]);
        hi = fmax(hi, err[i]);
        if (has_coh) {
            clo = fmin(clo, coh[i]);
            chi = fmax(chi, coh[i]);
        }
        if (k[i] == chosen->valuedouble)
            pick_err = err[i];
    }
    const char *rule_name = cJSON_IsString(rule) ? rule->valuestring : "?";
    char desc[320];
    snprintf(desc, sizeof(desc),
             "Reconstruction error for %d numbers of topics, from k = %.0f (%.6g) to k = %.0f "
             "(%.6g)%s; suggested k = %.0f by the rule \"%s\"",
             n, k[0], err[0], k[n - 1], err[n - 1], has_coh ? ", with each k's coherence" : "",
             chosen->valuedouble, rule_name);
    const int height = 400;
    struct tm_svg_frame f = {90, 50, 470, 280};
    struct tm_svg_scale sx, sy, sc;
    tm_svg_scale_nice(&sx, k[0], k[n - 1] > k[0] ? k[n - 1] : k[0] + 1, n < 10 ? n + 1 : 10);
    tm_svg_scale_nice(&sy, lo, hi, 6);
    tm_svg_open(b, WIDTH, height, "Reconstruction error by number of topics", desc);
    tm_svg_axes(b, &f, &sx, &sy, "number of topics k", "reconstruction error");
    double y0 = f.top + f.height;
    /* The suggested k: a dashed vertical line, a ring on its point. */
    double px = tm_svg_scale_map(&sx, chosen->valuedouble, f.left, f.left + f.width);
    tm_jbuf_printf(b,
                   "<g class=\"suggested\"><title>suggested k = %.0f (%s)</title>"
                   "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"1.5\" stroke-dasharray=\"3 3\"/>\n",
                   chosen->valuedouble, rule_name, px, f.top, px, y0, tm_svg_colours[5]);
    if (isfinite(pick_err))
        tm_jbuf_printf(b,
                       "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"%s\" "
                       "stroke-width=\"2\"/>\n",
                       px, tm_svg_scale_map(&sy, pick_err, y0, f.top), tm_svg_colours[5]);
    char label[64];
    snprintf(label, sizeof(label), "suggested k = %.0f (%s)", chosen->valuedouble, rule_name);
    tm_svg_text(b, px + 4, f.top + 12, "fill=\"#222222\" font-size=\"12\"", label, 0);
    tm_jbuf_puts(b, "</g>\n");
    xy_series(b, &f, &sx, &sy, k, err, n, tm_svg_colours[0], 0);
    legend(b, f.left, 24, tm_svg_colours[0], 0, "reconstruction error");
    if (has_coh) {
        tm_svg_scale_nice(&sc, clo, chi, 6);
        double xr = f.left + f.width;
        tm_jbuf_printf(
            b, "<path d=\"M%.1f %.1fV%.1f\" stroke=\"%s\" stroke-width=\"1\" fill=\"none\"/>\n", xr,
            f.top, y0, tm_svg_colours[1]);
        for (int i = 0; i < sc.n_ticks; i++) {
            char tick[32];
            double py = tm_svg_scale_map(&sc, sc.ticks[i], y0, f.top);
            tm_jbuf_printf(
                b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", xr,
                py, xr + 5, py, tm_svg_colours[1]);
            tm_svg_tick_label(&sc, sc.ticks[i], tick, sizeof(tick));
            tm_svg_text(b, xr + 8, py + 4, "fill=\"#222222\"", tick, 0);
        }
        xy_series(b, &f, &sx, &sc, k, coh, n, tm_svg_colours[1], 1);
        legend(b, f.left + 200, 24, tm_svg_colours[1], 1, "mean coherence (right axis)");
    }
    tm_svg_close(b);
out:
    tm_free(k);
    return s;
}

tm_status tm_plot_render(const char *name, const char *result, size_t len,
                         const struct tm_plot_doc_topics *dt, char **svg, size_t *svg_len,
                         struct tm_api_error *e)
{
    *svg = NULL;
    *svg_len = 0;
    tm_api_error_clear(e);
    if (!tm_plot_known(name))
        return tm_api_errorf(e, TM_ENOTFOUND, NULL, -1, "no plot named \"%.40s\"; plots: %s", name,
                             tm_plot_names());
    struct tm_json_doc doc;
    tm_status s = tm_json_parse_stored_object(&doc, result, len, "result", e);
    if (s)
        return s;
    const cJSON *root = doc.root;
    struct tm_jbuf b;
    tm_jbuf_init(&b, SVG_CAP);
    if (!strcmp(name, "singular_values"))
        s = plot_singular_values(&b, root, e);
    else if (!strcmp(name, "error_trace"))
        s = plot_error_trace(&b, root, e);
    else if (!strcmp(name, "topics"))
        s = plot_topics(&b, root, e);
    else if (!strcmp(name, "sweep"))
        s = plot_sweep(&b, root, e);
    else
        s = plot_document_topics(&b, dt, e);
    tm_json_release(&doc);
    if (s) {
        tm_jbuf_release(&b);
        return s;
    }
    tm_status bs;
    *svg = tm_jbuf_detach(&b, svg_len, &bs);
    if (!*svg)
        return tm_api_errorf(e, bs, NULL, -1, "%s",
                             bs == TM_ENOMEM ? "out of memory" : "the plot is too large");
    return TM_OK;
}
