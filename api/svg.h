/*
 * svg.h - the pieces api/plots.c draws its SVG charts with: the document's
 * frame (size, <title> and <desc> for screen readers), escaped text, nice
 * axis scales with ticks, axes, and colours that survive colour blindness
 * (Okabe & Ito's qualitative palette, a viridis ramp for heat maps).
 *
 * Everything is appended to a tm_jbuf, which remembers a failure (cap or
 * memory) so callers check once at the end.
 * Thread-safety: reentrant.
 */
#ifndef TM_API_SVG_H
#define TM_API_SVG_H

#include <stddef.h>

#include "api/jbuf.h"

#define TM_SVG_MAX_TICKS 12

/* A linear scale from data [lo, hi] whose ends and ticks are round numbers
 * (1, 2 or 5 times a power of ten), as Heckbert's "nice numbers" make them. */
struct tm_svg_scale {
    double lo, hi;
    double ticks[TM_SVG_MAX_TICKS];
    int n_ticks;
    int decimals; /* digits after the point that tell the ticks apart */
};

/* About want (2..TM_SVG_MAX_TICKS - 2) ticks covering [lo, hi]; lo == hi or
 * non-finite bounds give a unit range around lo (or 0). */
void tm_svg_scale_nice(struct tm_svg_scale *s, double lo, double hi, int want);
/* v's position between px_lo (at s->lo) and px_hi (at s->hi). */
double tm_svg_scale_map(const struct tm_svg_scale *s, double v, double px_lo, double px_hi);

/* A plotting area inside the picture, in pixels from its top-left corner. */
struct tm_svg_frame {
    double left, top, width, height;
};

/* <svg> with width x height, its viewBox, role="img", and <title> (the
 * accessible name) and <desc> (may be NULL); font defaults. No id
 * attributes: several charts share one page (the report). */
void tm_svg_open(struct tm_jbuf *b, int width, int height, const char *title, const char *desc);
void tm_svg_close(struct tm_jbuf *b);

/* n bytes of s as XML character data or attribute text: & < > " ' escaped,
 * bytes that are not valid UTF-8 and characters XML 1.0 forbids (controls
 * but tab, newline, carriage return) become U+FFFD. */
void tm_svg_escape(struct tm_jbuf *b, const char *s, size_t n);

/* <text x y attrs>s</text>; attrs (may be NULL) is written as given. At
 * most max_chars characters of s are kept (0: all), then an ellipsis. */
void tm_svg_text(struct tm_jbuf *b, double x, double y, const char *attrs, const char *s,
                 size_t max_chars);

/* v as a tick label with s's decimals ("0.25", "1e+06" for huge values). */
void tm_svg_tick_label(const struct tm_svg_scale *s, double v, char *out, size_t size);

/* The left and bottom axes of f with x's and y's ticks, light grid lines
 * across f at y's ticks, and the axis titles (either may be NULL). */
void tm_svg_axes(struct tm_jbuf *b, const struct tm_svg_frame *f, const struct tm_svg_scale *x,
                 const struct tm_svg_scale *y, const char *x_title, const char *y_title);

/* Okabe & Ito's eight colours ("#rrggbb"), distinct for the common colour
 * vision deficiencies; the first is the default series colour. */
#define TM_SVG_N_COLOURS 8
extern const char *const tm_svg_colours[TM_SVG_N_COLOURS];

/* The viridis colour at t in [0, 1] (clamped) as "#rrggbb", dark violet to
 * light yellow: lightness rises with t, so it reads in grey and for
 * colour-blind eyes. */
void tm_svg_ramp(double t, char out[8]);

#endif
