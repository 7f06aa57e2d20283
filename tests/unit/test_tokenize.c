/*
 * test_tokenize.c - normalisation and tokens against scikit-learn's
 * build_analyzer() (tests/fixtures/text/tokenize.txt, written by
 * tests/fixtures/text/gen.py): Unicode letters and digits, accents in both
 * modes, underscores, apostrophes, CRLF and lone CR, NUL, invalid UTF-8.
 */
#include <stdlib.h>

#include "core/alloc.h"
#include "core/text/tokenize.h"
#include "core/text/utf8.h"
#include "fixture.h"
#include "harness.h"

/* The analyzer: repair, normalise, tokenize; tokens joined by spaces. */
static tm_status analyze(int lower, enum tm_accents acc, const char *in, size_t len, char *out,
                         size_t cap)
{
    char *fixed = malloc(tm_utf8_repair_bound(len) + 1);
    size_t n = tm_utf8_repair(in, len, fixed), o = 0, pos = 0, start, tlen, olen;
    const char *norm;
    struct tm_textbuf buf = {0};
    tm_status st = tm_tokenize_normalize(lower, acc, fixed, n, &buf, &norm, &olen);
    if (st == TM_OK)
        while (tm_tokenize_next(norm, olen, &pos, &start, &tlen) && o + tlen + 2 < cap) {
            if (o)
                out[o++] = ' ';
            memcpy(out + o, norm + start, tlen);
            o += tlen;
        }
    out[o] = '\0';
    tm_textbuf_release(&buf);
    free(fixed);
    return st;
}

TM_TEST(tokenize_matches_sklearn_analyzer_fixture)
{
    char *text = tm_test_read_fixture("text/tokenize.txt", NULL);
    REQUIRE(text);
    int cases = 0;
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        if (strncmp(line, "in ", 3) != 0)
            continue;
        const char *p = line + 3;
        int lower = (int)strtol(p, (char **)&p, 10);
        while (*p == ' ')
            p++;
        enum tm_accents acc = strncmp(p, "none", 4) == 0      ? TM_ACCENTS_NONE
                              : strncmp(p, "unicode", 7) == 0 ? TM_ACCENTS_UNICODE
                                                              : TM_ACCENTS_ASCII;
        p += strcspn(p, " ");
        size_t in_len;
        char *in = tm_test_unhex(&p, " ", &in_len);
        p = strchr(p, '\n') + 1;
        REQUIRE(strncmp(p, "out", 3) == 0);
        p += 3;
        char want[4096] = "", got[4096];
        size_t w = 0;
        while (*p == ' ') {
            size_t tl;
            char *tok = tm_test_unhex(&p, " ", &tl);
            if (w)
                want[w++] = ' ';
            memcpy(want + w, tok, tl);
            w += tl;
            free(tok);
        }
        want[w] = '\0';
        CHECK_INT_EQ(analyze(lower, acc, in, in_len, got, sizeof(got)), TM_OK);
        if (strcmp(got, want) != 0)
            tm_test_fail(t, __FILE__, __LINE__,
                         "case %d (lower %d, accents %d): got [%s], want [%s]", cases, lower,
                         (int)acc, got, want);
        free(in);
        cases++;
        line = p;
    }
    CHECK(cases >= 90);
    free(text);
}

TM_TEST(tokenize_runs_of_two_or_more_code_points)
{
    char got[256];
    /* one-character runs are not tokens, whatever their byte length */
    CHECK_INT_EQ(analyze(1, TM_ACCENTS_NONE, "a \xc3\xa9 \xc3\xa9\xc3\xa9 \xe4\xb8\xad x1", 17, got,
                         sizeof(got)),
                 TM_OK);
    CHECK_STR_EQ(got, "\xc3\xa9\xc3\xa9 x1");
    /* a combining mark splits a word; NUL and U+FFFD are separators */
    CHECK_INT_EQ(analyze(1, TM_ACCENTS_NONE,
                         "ab\xcc\x81"
                         "cd e\0fg hi\xffjk",
                         17, got, sizeof(got)),
                 TM_OK);
    CHECK_STR_EQ(got, "ab cd fg hi jk");
    /* U+0130 lower-cases to i + U+0307 (Python); accents=unicode removes the dot */
    CHECK_INT_EQ(analyze(1, TM_ACCENTS_NONE, "\xc4\xb0stanbul", 9, got, sizeof(got)), TM_OK);
    CHECK_STR_EQ(got, "stanbul");
    CHECK_INT_EQ(analyze(1, TM_ACCENTS_UNICODE, "\xc4\xb0stanbul", 9, got, sizeof(got)), TM_OK);
    CHECK_STR_EQ(got, "istanbul");
    /* Final sigma */
    CHECK_INT_EQ(
        analyze(1, TM_ACCENTS_NONE, "\xce\x9f\xce\xa3 \xce\xa3\xce\x9f", 9, got, sizeof(got)),
        TM_OK);
    CHECK_STR_EQ(got, "\xce\xbf\xcf\x82 \xcf\x83\xce\xbf");
}

TM_TEST(tokenize_normalize_fails_cleanly)
{
    /* NFKD of U+FDFA is 18 code points: a cap on the buffer is honoured */
    struct tm_textbuf buf = {.max = 16};
    const char *out;
    size_t olen;
    CHECK_INT_EQ(tm_tokenize_normalize(1, TM_ACCENTS_UNICODE, "\xef\xb7\xba", 3, &buf, &out, &olen),
                 TM_ETOOBIG);
    tm_textbuf_release(&buf);
    /* ASCII without capitals is not copied */
    CHECK_INT_EQ(tm_tokenize_normalize(1, TM_ACCENTS_ASCII, "abc", 3, &buf, &out, &olen), TM_OK);
    CHECK(buf.data == NULL && olen == 3);
}
