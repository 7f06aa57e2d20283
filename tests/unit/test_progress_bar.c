/* test_progress_bar.c - the command line's progress: which style for which
 * flags and output, the bar's layout at a terminal's width, its estimate of
 * the time left, redraws in place and their rate, a stage per line, and
 * the plain lines for logs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "server/progress_bar.h"

TM_TEST(progress_bar_style_for_flags_and_terminal)
{
    CHECK_INT_EQ(tm_progress_style_for(0, 0, 1), TM_PROGRESS_BAR);
    CHECK_INT_EQ(tm_progress_style_for(0, 1, 1), TM_PROGRESS_BAR);
    CHECK_INT_EQ(tm_progress_style_for(0, 1, 0), TM_PROGRESS_LINES);
    CHECK_INT_EQ(tm_progress_style_for(0, 0, 0), TM_PROGRESS_NONE);
    CHECK_INT_EQ(tm_progress_style_for(1, 1, 1), TM_PROGRESS_NONE);
    CHECK_INT_EQ(tm_progress_style_for(1, 1, 0), TM_PROGRESS_NONE);
}

static int count(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

TM_TEST(progress_bar_layout)
{
    char line[256];
    tm_progress_bar_format(line, sizeof(line), 80, "nmf", 0.25, 75, 225);
    CHECK_INT_EQ(strlen(line), 80); /* the whole width, no more */
    CHECK(!strncmp(line, "nmf          [", 14));
    CHECK(strstr(line, "]  25% elapsed 1:15 ETA 3:45") != NULL);
    int bar = count(line, '#') + count(line, '-');
    CHECK_INT_EQ(count(line, '#'), bar / 4);
    tm_progress_bar_format(line, sizeof(line), 100, "vocabulary_long_name", 1.5, 4000, -1);
    CHECK_INT_EQ(strlen(line), 100);
    CHECK(!strncmp(line, "vocabulary_l [", 14)); /* the stage cut to its column */
    CHECK(strstr(line, "100% elapsed 1:06:40 ETA -:--") != NULL);
    CHECK_INT_EQ(count(line, '-'), 3); /* full: only the three of "-:--" */
    /* Too narrow for a bar: the numbers alone, still within the width. */
    tm_progress_bar_format(line, sizeof(line), 40, "nmf", 0.5, 1, 1);
    CHECK(strlen(line) <= 40);
    CHECK(strchr(line, '[') == NULL);
    CHECK(strstr(line, "50%") != NULL);
    /* A buffer smaller than the width bounds it. */
    char small[32];
    tm_progress_bar_format(small, sizeof(small), 80, "nmf", 0.5, 1, 1);
    CHECK(strlen(small) < sizeof(small));
}

/* What b wrote to its memory stream so far. */
struct sink {
    FILE *f;
    char *buf;
    size_t len;
};

TM_TEST(progress_bar_redraws_in_place_at_a_bounded_rate)
{
    struct sink s = {0};
    REQUIRE((s.f = open_memstream(&s.buf, &s.len)) != NULL);
    struct tm_progress_bar b;
    tm_progress_bar_init(&b, s.f, TM_PROGRESS_BAR, 80);
    tm_progress_bar_update(&b, "tokenize", 0.0, 100.0);
    tm_progress_bar_update(&b, "tokenize", 0.3, 100.05); /* too soon: not drawn */
    tm_progress_bar_update(&b, "tokenize", 0.5, 110.0);  /* half in 10 s: 10 s left */
    tm_progress_bar_update(&b, "tokenize", 1.0, 110.01); /* the end is always drawn */
    tm_progress_bar_update(&b, "nmf", 0.0, 110.02);      /* a new stage: a new line */
    tm_progress_bar_finish(&b);
    tm_progress_bar_finish(&b); /* once only */
    fflush(s.f);
    CHECK_INT_EQ(count(s.buf, '\r'), 4);
    CHECK_INT_EQ(count(s.buf, '\n'), 2);
    CHECK(strstr(s.buf, " 30%") == NULL);
    CHECK(strstr(s.buf, " 50% elapsed 0:10 ETA 0:10") != NULL);
    CHECK(strstr(s.buf, "100% elapsed 0:10 ETA 0:00\033[K\n\rnmf ") != NULL);
    CHECK(s.len > 0 && s.buf[s.len - 1] == '\n');
    fclose(s.f);
    free(s.buf);
}

TM_TEST(progress_bar_lines_for_logs_and_none_when_quiet)
{
    struct sink s = {0};
    REQUIRE((s.f = open_memstream(&s.buf, &s.len)) != NULL);
    struct tm_progress_bar b;
    tm_progress_bar_init(&b, s.f, TM_PROGRESS_LINES, 80);
    tm_progress_bar_update(&b, "nmf", 0.1, 1.0);
    tm_progress_bar_update(&b, "nmf", 0.2, 1.2); /* within half a second: skipped */
    tm_progress_bar_update(&b, "nmf", 0.4, 1.6);
    tm_progress_bar_finish(&b);
    fflush(s.f);
    CHECK_STR_EQ(s.buf, "topicd: nmf 10%\ntopicd: nmf 40%\n");
    fclose(s.f);
    free(s.buf);

    memset(&s, 0, sizeof(s));
    REQUIRE((s.f = open_memstream(&s.buf, &s.len)) != NULL);
    tm_progress_bar_init(&b, s.f, TM_PROGRESS_NONE, 80);
    tm_progress_bar_update(&b, "nmf", 1.0, 1.0);
    tm_progress_bar_finish(&b);
    fflush(s.f);
    CHECK_INT_EQ(s.len, 0);
    fclose(s.f);
    free(s.buf);
}
