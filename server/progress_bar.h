/*
 * progress_bar.h - the progress of `topicd fit` and `topicd vectorize` on
 * standard error: on a terminal, one bar redrawn in place with the stage,
 * the percentage, the time spent and an estimate of the time left; with
 * --progress when standard error is not a terminal (a log), a line per
 * stage and every half second; with --quiet, nothing.
 *
 * The estimate is the current stage's: its remaining fraction at the rate
 * the stage has advanced so far. An NMF fit's fraction is its iterations
 * over max_iter, so a fit that converges early ends sooner than estimated.
 * Thread-safety: one owner at a time (core serialises progress calls).
 */
#ifndef TM_SERVER_PROGRESS_BAR_H
#define TM_SERVER_PROGRESS_BAR_H

#include <stddef.h>
#include <stdio.h>

enum tm_progress_style { TM_PROGRESS_NONE, TM_PROGRESS_LINES, TM_PROGRESS_BAR };

/* The style for the flags and whether standard error is a terminal. */
enum tm_progress_style tm_progress_style_for(int quiet, int progress_flag, int is_terminal);

struct tm_progress_bar {
    FILE *out;
    enum tm_progress_style style;
    int width; /* columns of the terminal */
    const char *stage;
    double stage_t0, stage_f0; /* when the stage was first seen, at what fraction */
    double last;               /* when the last line or bar was written */
    int drawn;                 /* a bar is on the line: finish ends it */
};

/* out borrowed; width: the terminal's columns (40 at least is used). */
void tm_progress_bar_init(struct tm_progress_bar *b, FILE *out, enum tm_progress_style style,
                          int width);
/* stage (a static string) at fraction in [0, 1], now (monotonic seconds). */
void tm_progress_bar_update(struct tm_progress_bar *b, const char *stage, double fraction,
                            double now);
/* Ends the bar's line so later output starts on a fresh one. */
void tm_progress_bar_finish(struct tm_progress_bar *b);

/* The bar for width columns into out (size > width): stage, bar, percent,
 * time spent and left ("m:ss"; left < 0: not known yet). Returns out. */
const char *tm_progress_bar_format(char *out, size_t size, int width, const char *stage,
                                   double fraction, double spent, double left);

/* The columns of the terminal on fd, 80 when it does not say. */
int tm_progress_bar_columns(int fd);

#endif
