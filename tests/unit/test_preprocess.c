/*
 * test_preprocess.c - newsgroup header/footer/quote removal against
 * scikit-learn's strip_newsgroup_* (tests/fixtures/text/preprocess.txt,
 * written by tests/fixtures/text/gen.py), plus hand-picked edge cases.
 */
#include <stdlib.h>

#include "core/text/preprocess.h"
#include "core/text/vectorize.h"
#include "fixture.h"
#include "harness.h"

TM_TEST(preprocess_matches_sklearn_fixture)
{
    char *text = tm_test_read_fixture("text/preprocess.txt", NULL);
    REQUIRE(text);
    int cases = 0;
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        if (strncmp(line, "strip ", 6) != 0)
            continue;
        const char *p = line + 6;
        unsigned flags = (unsigned)strtoul(p, (char **)&p, 10);
        size_t in_len, want_len;
        char *in = tm_test_unhex(&p, " ", &in_len);
        p = strchr(p, '\n') + 1;
        REQUIRE(strncmp(p, "out ", 4) == 0);
        p += 4;
        char *want = tm_test_unhex(&p, " ", &want_len);
        char *scratch = malloc(in_len + 1);
        const char *out;
        size_t n = tm_preprocess(flags, in, in_len, scratch, &out);
        if (n != want_len || memcmp(out, want, n) != 0)
            tm_test_fail(t, __FILE__, __LINE__, "case %d (flags %u): got \"%.*s\", want \"%s\"",
                         cases, flags, (int)n, out, want);
        free(scratch);
        free(in);
        free(want);
        cases++;
        line = p;
    }
    CHECK(cases >= 40);
    free(text);
}

TM_TEST(preprocess_footer_returns_original_text)
{
    /* No separator line: the original, unstripped text comes back. */
    const char *s = "  one\ntwo  \n";
    const char *out;
    size_t n = tm_preprocess_strip_footer(s, strlen(s), &out);
    CHECK(out == s && n == strlen(s));
    /* Only line 0 is a separator: also the original. */
    s = "--\nbody";
    n = tm_preprocess_strip_footer(s, strlen(s), &out);
    CHECK(out == s && n == strlen(s));
    /* Whitespace-only text. */
    s = " \n\t ";
    n = tm_preprocess_strip_footer(s, strlen(s), &out);
    CHECK(out == s && n == strlen(s));
    CHECK_INT_EQ(tm_preprocess_strip_footer("", 0, &out), 0);
}

TM_TEST(preprocess_header_without_blank_line_is_empty)
{
    const char *out;
    CHECK_INT_EQ(tm_preprocess_strip_header("a\nb\r\n\r\nc", 9, &out), 0);
    CHECK_INT_EQ(tm_preprocess_strip_header("a\n\nb", 4, &out), 1);
    CHECK(*out == 'b');
    CHECK_INT_EQ(tm_preprocess_strip_header("", 0, &out), 0);
}

TM_TEST(preprocess_quotes_with_nul_and_long_lines)
{
    /* NUL is an ordinary byte; patterns are found anywhere in a line. */
    const char s[] = "a\0b\nx wrote: y\n>q\nkeep\0 me\nsays:";
    char out[sizeof(s)];
    size_t n = tm_preprocess_strip_quotes(s, sizeof(s) - 1, out);
    CHECK_INT_EQ(n, 12);
    CHECK(memcmp(out, "a\0b\nkeep\0 me", 12) == 0);
    /* ':' without a quoting word, then a word without ':' */
    const char *s2 = "time: 10\nhe writes\nsaid :\nwrites in";
    char out2[64];
    n = tm_preprocess_strip_quotes(s2, strlen(s2), out2);
    CHECK_INT_EQ(n, strlen("time: 10\nhe writes\nsaid :"));
}
