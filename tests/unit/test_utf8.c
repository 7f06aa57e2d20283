/*
 * test_utf8.c - UTF-8 repair and the Unicode classes of utf8.h, and the case
 * and accent mappings of tokenize.h, against Python for every code point.
 *
 * tests/fixtures/text/unicode.txt holds Python 3.11's answers (Unicode 14),
 * written by tests/fixtures/text/gen.py. utf8proc implements its own Unicode
 * version (2.8 implements 15.0): a code point assigned in one version and not
 * in the other is the one allowed difference, and the tests check that every
 * difference is such a code point.
 */
#include <stdlib.h>
#include <utf8proc.h>

#include "core/alloc.h"
#include "core/text/tokenize.h"
#include "core/text/utf8.h"
#include "fixture.h"
#include "harness.h"

#define N_CP 0x110000

static int is_surrogate(int32_t cp)
{
    return cp >= 0xD800 && cp <= 0xDFFF;
}

/* Python's unassigned code points, from unicode.txt. */
static unsigned char *py_unassigned;

/* Assigned in one Unicode version and not in the other. */
static int version_skew(int32_t cp)
{
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_CN || py_unassigned[cp];
}

struct mapping {
    int32_t cp;
    int n;
    int32_t to[24];
};

/* Loads the lines "<kind> <cp> <cps>" of unicode.txt into a table by cp. */
static struct mapping **load_mappings(const char *text, const char *kind)
{
    struct mapping **map = calloc(N_CP, sizeof(*map));
    size_t klen = strlen(kind);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
        if (strncmp(line, kind, klen) != 0 || line[klen] != ' ')
            continue;
        char *p;
        struct mapping *m = calloc(1, sizeof(*m));
        m->cp = (int32_t)strtol(line + klen + 1, &p, 16);
        while (*p == ' ' && p[1] != '-' && p[1] != '\n' && m->n < 24)
            m->to[m->n++] = (int32_t)strtol(p + 1, &p, 16);
        map[m->cp] = m;
    }
    return map;
}

static void free_mappings(struct mapping **map)
{
    for (int32_t cp = 0; cp < N_CP; cp++)
        free(map[cp]);
    free(map);
}

static unsigned char *load_ranges(const char *text, const char *kind)
{
    unsigned char *set = calloc(N_CP, 1);
    size_t klen = strlen(kind);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
        if (strncmp(line, kind, klen) != 0 || line[klen] != ' ')
            continue;
        char *p;
        long lo = strtol(line + klen + 1, &p, 16), hi = strtol(p, NULL, 16);
        memset(set + lo, 1, (size_t)(hi - lo + 1));
    }
    return set;
}

TM_TEST(utf8_repair_matches_python_replace)
{
    /* b.decode("utf-8", "replace").encode() for each input, from Python 3.11 */
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"abc", "abc"},
        {"\xff", "\xef\xbf\xbd"},
        {"a\xc3(", "a\xef\xbf\xbd("},
        {"\xe2\x82", "\xef\xbf\xbd"}, /* truncated: one U+FFFD */
        {"\xe2\x82x", "\xef\xbf\xbdx"},
        {"\xe0\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xf0\x9f\x98", "\xef\xbf\xbd"},
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\x80\xbf", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xfe\xff", "\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].in);
        char out[64];
        size_t n = tm_utf8_repair(cases[i].in, len, out);
        out[n] = '\0';
        CHECK_STR_EQ(out, cases[i].out);
        CHECK_INT_EQ(tm_utf8_valid_prefix(out, n), n);
        CHECK_INT_EQ(tm_utf8_valid_prefix(cases[i].in, len) == len,
                     strcmp(cases[i].in, cases[i].out) == 0);
    }
    /* NUL is valid UTF-8 */
    CHECK_INT_EQ(tm_utf8_valid_prefix("a\0b", 3), 3);
    int ascii;
    CHECK_INT_EQ(tm_utf8_valid_prefix_ascii("plain ascii text", 16, &ascii), 16);
    CHECK(ascii);
    CHECK_INT_EQ(tm_utf8_valid_prefix_ascii("long ascii then caf\xc3\xa9", 21, &ascii), 21);
    CHECK(!ascii);
    CHECK_INT_EQ(tm_utf8_valid_prefix_ascii("ab\xff", 3, &ascii), 2);
    CHECK(!ascii && tm_utf8_is_ascii("ab\x7f", 3) && !tm_utf8_is_ascii("abcdefghi\x80", 10));
}

TM_TEST(utf8_encode_decode_round_trip)
{
    for (int32_t cp = 0; cp < N_CP; cp++) {
        if (is_surrogate(cp))
            continue;
        char buf[4];
        size_t n = tm_utf8_encode(cp, buf), m;
        if (tm_utf8_valid_prefix(buf, n) != n || tm_utf8_decode(buf, n, &m) != cp || m != n) {
            CHECK(!"round trip");
            break;
        }
    }
}

TM_TEST(unicode_word_and_space_match_python)
{
    size_t len;
    char *text = tm_test_read_fixture("text/unicode.txt", &len);
    REQUIRE(text);
    unsigned char *word = load_ranges(text, "word"), *space = load_ranges(text, "space");
    py_unassigned = load_ranges(text, "unassigned");
    long word_diff = 0, newer = 0;
    for (int32_t cp = 0; cp < N_CP; cp++) {
        if (is_surrogate(cp))
            continue;
        CHECK_INT_EQ(tm_unicode_is_space(cp), space[cp]);
        if (tm_unicode_is_word(cp) != word[cp]) {
            word_diff++;
            newer += version_skew(cp);
        }
    }
    /* Every difference is a letter or digit added after utf8proc's Unicode. */
    CHECK_INT_EQ(word_diff, newer);
    CHECK(tm_unicode_is_word('_') && !tm_unicode_is_word(0x301) && tm_unicode_is_word(0xB2));
    free(word);
    free(space);
    free(py_unassigned);
    free(text);
}

/* tm_tokenize_normalize on one code point, as code points. */
static int normalize_one(int lower, enum tm_accents acc, int32_t cp, int32_t *out)
{
    char in[4];
    size_t n = tm_utf8_encode(cp, in), olen, k;
    const char *o;
    struct tm_textbuf buf = {0};
    int count = 0;
    if (tm_tokenize_normalize(lower, acc, in, n, &buf, &o, &olen) != TM_OK)
        return -1;
    for (size_t i = 0; i < olen && count < 24; i += k)
        out[count++] = tm_utf8_decode(o + i, olen - i, &k);
    tm_textbuf_release(&buf);
    return count;
}

static long compare_mapping(struct tm_test_ctx *t, struct mapping **map, int lower,
                            enum tm_accents acc, long *newer)
{
    long diff = 0;
    for (int32_t cp = 0; cp < N_CP; cp++) {
        if (is_surrogate(cp) || (acc != TM_ACCENTS_NONE && cp >= 0xAC00 && cp <= 0xD7A3))
            continue;
        int32_t got[24], want1 = cp;
        int n = normalize_one(lower, acc, cp, got);
        const int32_t *want = map[cp] ? map[cp]->to : &want1;
        int wn = map[cp] ? map[cp]->n : 1;
        if (acc == TM_ACCENTS_ASCII && cp >= 0x80 && !map[cp])
            wn = 0; /* strip_accents_ascii drops what has no ASCII form */
        if (n != wn || memcmp(got, want, sizeof(*got) * (size_t)n) != 0) {
            diff++;
            *newer += version_skew(cp);
        }
    }
    (void)t;
    return diff;
}

TM_TEST(unicode_lower_and_accents_match_python)
{
    size_t len;
    char *text = tm_test_read_fixture("text/unicode.txt", &len);
    REQUIRE(text);
    struct mapping **lower = load_mappings(text, "lower");
    struct mapping **uacc = load_mappings(text, "uacc");
    struct mapping **aacc = load_mappings(text, "aacc");
    py_unassigned = load_ranges(text, "unassigned");
    long newer = 0;
    long d1 = compare_mapping(t, lower, 1, TM_ACCENTS_NONE, &newer);
    CHECK_INT_EQ(d1, newer);
    newer = 0;
    long d2 = compare_mapping(t, uacc, 0, TM_ACCENTS_UNICODE, &newer);
    CHECK_INT_EQ(d2, newer);
    newer = 0;
    long d3 = compare_mapping(t, aacc, 0, TM_ACCENTS_ASCII, &newer);
    CHECK_INT_EQ(d3, newer);
    free_mappings(lower);
    free_mappings(uacc);
    free_mappings(aacc);
    free(py_unassigned);
    free(text);
}
