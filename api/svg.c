/*
 * svg.c - SVG building blocks for the plots (see svg.h).
 */
#include "api/svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/text/utf8.h"

const char *const tm_svg_colours[TM_SVG_N_COLOURS] = {
    "#0072B2", /* blue */
    "#D55E00", /* vermillion */
    "#009E73", /* bluish green */
    "#E69F00", /* orange */
    "#CC79A7", /* reddish purple */
    "#56B4E9", /* sky blue */
    "#F0E442", /* yellow */
    "#000000", /* black */
};

/* Heckbert's nice number near x: 1, 2, 5 or 10 times a power of ten,
 * rounded (round) or the next at or above x. */
static double nice_number(double x, int round)
{
    double e = floor(log10(x));
    double f = x / pow(10.0, e);
    double nf;
    if (round)
        nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else
        nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * pow(10.0, e);
}

void tm_svg_scale_nice(struct tm_svg_scale *s, double lo, double hi, int want)
{
    if (want < 2)
        want = 2;
    if (want > TM_SVG_MAX_TICKS - 2)
        want = TM_SVG_MAX_TICKS - 2;
    if (!isfinite(lo))
        lo = 0;
    if (!isfinite(hi))
        hi = lo;
    if (hi < lo) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (hi - lo <= fabs(lo) * 1e-12) {
        double half = lo == 0 ? 1 : fabs(lo) * 0.5;
        lo -= half;
        hi += half;
    }
    double step = nice_number(nice_number(hi - lo, 0) / (want - 1), 1);
    /* Rounding the step down can give more ticks than wanted: take the
     * next nice step until they fit. */
    while (ceil(hi / step) - floor(lo / step) + 1 > TM_SVG_MAX_TICKS)
        step = nice_number(step * 1.01, 0);
    s->lo = floor(lo / step) * step;
    s->hi = ceil(hi / step) * step;
    s->n_ticks = 0;
    for (int i = 0; i < TM_SVG_MAX_TICKS; i++) {
        double t = s->lo + i * step;
        if (t > s->hi + step * 0.5)
            break;
        s->ticks[s->n_ticks++] = fabs(t) < step * 1e-9 ? 0.0 : t;
    }
    s->hi = s->ticks[s->n_ticks - 1];
    int d = (int)-floor(log10(step));
    s->decimals = d > 0 ? d : 0;
}

double tm_svg_scale_map(const struct tm_svg_scale *s, double v, double px_lo, double px_hi)
{
    return px_lo + (v - s->lo) / (s->hi - s->lo) * (px_hi - px_lo);
}

void tm_svg_tick_label(const struct tm_svg_scale *s, double v, char *out, size_t size)
{
    double m = fmax(fabs(s->lo), fabs(s->hi));
    if (m >= 1e6 || (m > 0 && m < 1e-3))
        snprintf(out, size, "%.3g", v);
    else
        snprintf(out, size, "%.*f", s->decimals > 9 ? 9 : s->decimals, v);
}

void tm_svg_open(struct tm_jbuf *b, int width, int height, const char *title, const char *desc)
{
    tm_jbuf_printf(b,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                   "viewBox=\"0 0 %d %d\" role=\"img\" "
                   "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n<title>",
                   width, height, width, height);
    tm_svg_escape(b, title, strlen(title));
    tm_jbuf_puts(b, "</title>\n");
    if (desc) {
        tm_jbuf_puts(b, "<desc>");
        tm_svg_escape(b, desc, strlen(desc));
        tm_jbuf_puts(b, "</desc>\n");
    }
    tm_jbuf_printf(b, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", width, height);
}

void tm_svg_close(struct tm_jbuf *b)
{
    tm_jbuf_puts(b, "</svg>\n");
}

static int xml_char_allowed(int32_t cp)
{
    if (cp < 0x20)
        return cp == '\t' || cp == '\n' || cp == '\r';
    return cp != 0xFFFE && cp != 0xFFFF;
}

/* Escapes at most max_chars characters (0: all); 1 when some were left. */
static int escape_upto(struct tm_jbuf *b, const char *s, size_t n, size_t max_chars)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    size_t i = 0, chars = 0;
    while (i < n) {
        if (max_chars && chars == max_chars)
            return 1;
        size_t valid = tm_utf8_valid_prefix(s + i, n - i);
        if (!valid) {
            tm_jbuf_put(b, replacement, 3);
            i++;
            chars++;
            continue;
        }
        size_t len;
        int32_t cp = tm_utf8_decode(s + i, valid, &len);
        const char *esc = cp == '&'    ? "&amp;"
                          : cp == '<'  ? "&lt;"
                          : cp == '>'  ? "&gt;"
                          : cp == '"'  ? "&quot;"
                          : cp == '\'' ? "&#39;"
                                       : NULL;
        if (esc)
            tm_jbuf_puts(b, esc);
        else if (!xml_char_allowed(cp))
            tm_jbuf_put(b, replacement, 3);
        else
            tm_jbuf_put(b, s + i, len);
        i += len;
        chars++;
    }
    return 0;
}

void tm_svg_escape(struct tm_jbuf *b, const char *s, size_t n)
{
    escape_upto(b, s, n, 0);
}

void tm_svg_text(struct tm_jbuf *b, double x, double y, const char *attrs, const char *s,
                 size_t max_chars)
{
    tm_jbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\"%s%s>", x, y, attrs ? " " : "",
                   attrs ? attrs : "");
    if (escape_upto(b, s, strlen(s), max_chars))
        tm_jbuf_puts(b, "\xE2\x80\xA6"); /* U+2026 */
    tm_jbuf_puts(b, "</text>\n");
}

void tm_svg_axes(struct tm_jbuf *b, const struct tm_svg_frame *f, const struct tm_svg_scale *x,
                 const struct tm_svg_scale *y, const char *x_title, const char *y_title)
{
    double x0 = f->left, x1 = f->left + f->width;
    double y0 = f->top + f->height, y1 = f->top;
    char label[32];
    tm_jbuf_puts(b, "<g class=\"axes\" stroke=\"#444444\" stroke-width=\"1\">\n");
    for (int i = 0; i < y->n_ticks; i++) {
        double py = tm_svg_scale_map(y, y->ticks[i], y0, y1);
        tm_jbuf_printf(
            b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", x0,
            py, x1, py);
        tm_jbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x0 - 5, py,
                       x0, py);
    }
    for (int i = 0; i < x->n_ticks; i++) {
        double px = tm_svg_scale_map(x, x->ticks[i], x0, x1);
        tm_jbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px, y0, px,
                       y0 + 5);
    }
    tm_jbuf_printf(b, "<path d=\"M%.1f %.1fV%.1fH%.1f\" fill=\"none\"/>\n</g>\n", x0, y1, y0, x1);
    for (int i = 0; i < y->n_ticks; i++) {
        double py = tm_svg_scale_map(y, y->ticks[i], y0, y1);
        tm_svg_tick_label(y, y->ticks[i], label, sizeof(label));
        tm_svg_text(b, x0 - 8, py + 4, "text-anchor=\"end\" fill=\"#222222\"", label, 0);
    }
    for (int i = 0; i < x->n_ticks; i++) {
        double px = tm_svg_scale_map(x, x->ticks[i], x0, x1);
        tm_svg_tick_label(x, x->ticks[i], label, sizeof(label));
        tm_svg_text(b, px, y0 + 20, "text-anchor=\"middle\" fill=\"#222222\"", label, 0);
    }
    if (x_title)
        tm_svg_text(b, (x0 + x1) / 2, y0 + 40, "text-anchor=\"middle\" font-size=\"13\"", x_title,
                    0);
    if (y_title) {
        char attrs[128];
        double cx = f->left - 52, cy = (y0 + y1) / 2;
        snprintf(attrs, sizeof(attrs),
                 "text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 %.1f %.1f)\"", cx,
                 cy);
        tm_svg_text(b, cx, cy, attrs, y_title, 0);
    }
}

/* viridis at 9 evenly spaced stops (matplotlib's table, rounded). */
static const unsigned char viridis[9][3] = {
    {68, 1, 84},    {71, 44, 122}, {59, 81, 139},  {44, 113, 142}, {33, 144, 141},
    {39, 173, 129}, {92, 200, 99}, {170, 220, 50}, {253, 231, 37},
};

void tm_svg_ramp(double t, char out[8])
{
    if (!(t > 0))
        t = 0;
    if (t > 1)
        t = 1;
    double pos = t * 8;
    int i = (int)pos;
    if (i > 7)
        i = 7;
    double f = pos - i;
    int rgb[3];
    for (int c = 0; c < 3; c++)
        rgb[c] = (int)lround(viridis[i][c] + f * (viridis[i + 1][c] - viridis[i][c]));
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}
