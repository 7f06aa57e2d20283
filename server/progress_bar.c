/*
 * progress_bar.c - the command line's progress (see progress_bar.h).
 */
#include "progress_bar.h"

#include <math.h>
#include <string.h>
#include <sys/ioctl.h>

/* Redraws at most this often: a terminal keeps up, and the fit is not
 * slowed by writes. */
#define BAR_INTERVAL_S 0.1
#define LINE_INTERVAL_S 0.5
/* Columns for the stage's name, and the fewest columns worth a bar. */
#define STAGE_COLS 12
#define MIN_BAR 10

enum tm_progress_style tm_progress_style_for(int quiet, int progress_flag, int is_terminal)
{
    if (quiet)
        return TM_PROGRESS_NONE;
    if (is_terminal)
        return TM_PROGRESS_BAR;
    return progress_flag ? TM_PROGRESS_LINES : TM_PROGRESS_NONE;
}

int tm_progress_bar_columns(int fd)
{
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

void tm_progress_bar_init(struct tm_progress_bar *b, FILE *out, enum tm_progress_style style,
                          int width)
{
    memset(b, 0, sizeof(*b));
    b->out = out;
    b->style = style;
    b->width = width < 40 ? 40 : width > 200 ? 200 : width;
    b->last = -1e9;
}

/* "m:ss" (or "h:mm:ss") of s seconds; "-:--" when s < 0 or absurd. */
static void clock_text(char *out, size_t size, double s)
{
    if (!(s >= 0) || s > 360000) {
        snprintf(out, size, "-:--");
        return;
    }
    long t = lround(s);
    if (t >= 3600)
        snprintf(out, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, size, "%ld:%02ld", t / 60, t % 60);
}

const char *tm_progress_bar_format(char *out, size_t size, int width, const char *stage,
                                   double fraction, double spent, double left)
{
    if (!(fraction >= 0))
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    char spent_s[48], left_s[48], tail[128];
    clock_text(spent_s, sizeof(spent_s), spent);
    clock_text(left_s, sizeof(left_s), left);
    int tail_n =
        snprintf(tail, sizeof(tail), " %3.0f%% elapsed %s ETA %s", fraction * 100, spent_s, left_s);
    if ((size_t)width >= size)
        width = (int)size - 1;
    /* stage, " [", bar, "]", tail: the bar takes the columns left over. */
    int bar = width - STAGE_COLS - 3 - tail_n;
    if (bar < MIN_BAR) {
        snprintf(out, size, "%-*.*s%s", STAGE_COLS, STAGE_COLS, stage, tail);
        return out;
    }
    int filled = (int)floor(fraction * bar);
    int at = snprintf(out, size, "%-*.*s [", STAGE_COLS, STAGE_COLS, stage);
    for (int i = 0; i < bar && (size_t)at + 1 < size; i++)
        out[at++] = i < filled ? '#' : '-';
    out[at] = 0;
    snprintf(out + at, size - (size_t)at, "]%s", tail);
    return out;
}

void tm_progress_bar_update(struct tm_progress_bar *b, const char *stage, double fraction,
                            double now)
{
    if (b->style == TM_PROGRESS_NONE)
        return;
    int new_stage = stage != b->stage && (!b->stage || strcmp(stage, b->stage));
    if (new_stage) {
        b->stage = stage;
        b->stage_t0 = now;
        b->stage_f0 = fraction;
    }
    double interval = b->style == TM_PROGRESS_BAR ? BAR_INTERVAL_S : LINE_INTERVAL_S;
    if (!new_stage && now - b->last < interval && fraction < 1.0)
        return;
    b->last = now;
    if (b->style == TM_PROGRESS_LINES) {
        fprintf(b->out, "topicd: %s %.0f%%\n", stage, 100.0 * fraction);
        return;
    }
    double spent = now - b->stage_t0, done = fraction - b->stage_f0;
    /* Too early to tell until the stage has moved a little. */
    double left = done > 0.01 && spent > 0.2 ? spent * (1.0 - fraction) / done : -1;
    char line[256];
    tm_progress_bar_format(line, sizeof(line), b->width - 1, stage, fraction, spent, left);
    /* A new stage starts its own line; within one, the bar is redrawn. */
    if (new_stage && b->drawn)
        fputc('\n', b->out);
    fprintf(b->out, "\r%s\033[K", line);
    fflush(b->out);
    b->drawn = 1;
}

void tm_progress_bar_finish(struct tm_progress_bar *b)
{
    if (b->drawn)
        fputc('\n', b->out);
    b->drawn = 0;
}
