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

/* The tokens of ASCII s by the general path (normalise, then
 * tm_tokenize_next), as "start:bytes" lines, bytes lower-cased as asked. */
static size_t general_tokens(int lower, const char *s, size_t len, char *out, size_t cap)
{
    struct tm_textbuf buf = {0};
    const char *norm;
    size_t nlen, pos = 0, start, tlen, o = 0;
    if (tm_tokenize_normalize(lower, TM_ACCENTS_NONE, s, len, &buf, &norm, &nlen) != TM_OK)
        return 0;
    while (tm_tokenize_next(norm, nlen, &pos, &start, &tlen))
        o += (size_t)snprintf(out + o, cap - o, "%zu:%.*s\n", start, (int)tlen, norm + start);
    tm_textbuf_release(&buf);
    return o;
}

/* The same lines by tm_tokenize_ascii, max tokens a call. */
static size_t fast_tokens(int lower, const char *s, size_t len, size_t max, char *out, size_t cap)
{
    char *norm = malloc(len + 1);
    struct tm_token toks[40];
    size_t pos = 0, o = 0, n;
    do {
        n = tm_tokenize_ascii(s, len, lower, &pos, norm, toks, max);
        for (size_t k = 0; k < n; k++)
            o += (size_t)snprintf(out + o, cap - o, "%zu:%.*s\n", toks[k].start, (int)toks[k].len,
                                  norm + toks[k].start);
    } while (n == max);
    free(norm);
    return o;
}

/* The ASCII fast path (64 bytes at a time where SSE2 is there) gives the
 * general path's tokens: random ASCII of every length up to three 64-byte
 * blocks, word runs of 1 to 140 bytes (a token longer than a block, and one
 * ending on a block's edge), every byte value 1..127, in batches of 1, 3
 * and 32 tokens. */
TM_TEST(tokenize_ascii_fast_path_matches_general_path)
{
    static const char word[] = "azAZ09_mQ";
    static const char other[] = " \t\n.,'-@[`{/:\x01\x7f";
    enum { MAXLEN = 200, OUTCAP = 16384 };
    char *want = malloc(OUTCAP), *got = malloc(OUTCAP), s[MAXLEN];
    uint64_t r = 0x243F6A8885A308D3ull;
    int cases = 0;
    for (size_t len = 0; len < MAXLEN; len++) {
        for (int trial = 0; trial < 12; trial++) {
            size_t i = 0;
            while (i < len) {
                r = r * 6364136223846793005ull + 1442695040888963407ull;
                size_t run = 1 + (r >> 33) % (trial % 3 == 0 ? 140 : 7);
                int is_word = (r >> 20) & 1;
                for (size_t k = 0; k < run && i < len; k++) {
                    r = r * 6364136223846793005ull + 1442695040888963407ull;
                    unsigned v = (unsigned)(r >> 40);
                    s[i++] = trial % 4 == 3 ? (char)(1 + v % 127)
                             : is_word      ? word[v % (sizeof(word) - 1)]
                                            : other[v % (sizeof(other) - 1)];
                }
            }
            int lower = trial & 1;
            size_t w = general_tokens(lower, s, len, want, OUTCAP);
            static const size_t batches[] = {1, 3, 32};
            for (int bi = 0; bi < 3; bi++) {
                size_t g = fast_tokens(lower, s, len, batches[bi], got, OUTCAP);
                if (g != w || memcmp(got, want, w) != 0) {
                    tm_test_fail(t, __FILE__, __LINE__,
                                 "length %zu, trial %d, batch %zu: got\n%.*s\nwant\n%.*s", len,
                                 trial, batches[bi], (int)g, got, (int)w, want);
                    goto out;
                }
            }
            cases++;
        }
    }
    CHECK(cases == MAXLEN * 12);
out:
    free(want);
    free(got);
}
