/* test_jbuf.c - api/jbuf.h: string literals (escapes, invalid UTF-8),
 * numbers that read back exactly, the hard cap (TM_ETOOBIG) and allocation
 * failures, both remembered until detach. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/jbuf.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

/* b's text, detached (and checked for success); free with tm_free. */
static char *take(struct tm_test_ctx *t, struct tm_jbuf *b, size_t *len)
{
    tm_status st = TM_EIO;
    char *s = tm_jbuf_detach(b, len, &st);
    if (!s || st != TM_OK)
        tm_test_fail(t, __FILE__, __LINE__, "detach failed: %s", tm_status_name(st));
    return s;
}

TM_TEST(jbuf_string)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"", 0, "\"\""},
        {"plain", 5, "\"plain\""},
        {"a\"\\\n\r\t\b\f", 8, "\"a\\\"\\\\\\n\\r\\t\\b\\f\""},
        {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\""},
        {"nul\0in", 6, "\"nul\\u0000in\""},
        /* Valid UTF-8 passes through: 2, 3 and 4 bytes. */
        {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
        /* Invalid UTF-8 becomes U+FFFD, one per bad byte: a lone 0xff, a
         * cut sequence, an overlong form, a surrogate, past U+10FFFF. */
        {"\xff", 1, "\"\\ufffd\""},
        {"\xe2\x82z", 3, "\"\\ufffd\\ufffdz\""},
        {"\xc0\xaf", 2, "\"\\ufffd\\ufffd\""},
        {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""},
        {"\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
        {"a\"\\\n\x01\xc3\xa9\xff\xe2\x82z", 11,
         "\"a\\\"\\\\\\n\\u0001\xc3\xa9\\ufffd\\ufffd\\ufffdz\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_jbuf b;
        size_t len = 0;
        tm_jbuf_init(&b, 0);
        tm_jbuf_string(&b, cases[i].in, cases[i].len);
        char *s = take(t, &b, &len);
        if (!s || strcmp(s, cases[i].out) || len != strlen(cases[i].out))
            tm_test_fail(t, __FILE__, __LINE__, "case %zu: %s", i, s ? s : "(null)");
        tm_free(s);
    }
}

/* Shortest text that reads back exactly; integers as they are. */
TM_TEST(jbuf_numbers)
{
    static const double vals[] = {
        0.1, 1.0 / 3.0, 1e-300, 5e-324, DBL_MAX, -2.5, 0.0, 123456789.0, 0.30000000000000004};
    struct tm_jbuf b;
    size_t len;
    char *s;
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        tm_jbuf_init(&b, 0);
        tm_jbuf_double(&b, vals[i]);
        s = take(t, &b, &len);
        REQUIRE(s);
        CHECK(strtod(s, NULL) == vals[i]);
        tm_free(s);
    }
    tm_jbuf_init(&b, 0);
    tm_jbuf_double(&b, 0.1);
    s = take(t, &b, &len);
    CHECK_STR_EQ(s, "0.1"); /* not 0.10000000000000001 */
    tm_free(s);
    srand(7);
    for (int i = 0; i < 10000; i++) {
        double v = (double)rand() / RAND_MAX * pow(10, rand() % 40 - 20);
        char buf[40];
        tm_jbuf_init(&b, 0);
        tm_jbuf_double(&b, v);
        s = take(t, &b, &len);
        REQUIRE(s);
        snprintf(buf, sizeof(buf), "%s", s);
        if (strtod(buf, NULL) != v)
            tm_test_fail(t, __FILE__, __LINE__, "%.17g printed as %s", v, buf);
        tm_free(s);
    }
    tm_jbuf_init(&b, 0);
    tm_jbuf_int(&b, INT64_MIN);
    tm_jbuf_puts(&b, " ");
    tm_jbuf_int(&b, 42);
    s = take(t, &b, &len);
    CHECK_STR_EQ(s, "-9223372036854775808 42");
    tm_free(s);
    /* tm_jbuf_int writes what printf's %lld does. */
    static const int64_t ints[] = {0, -1, 9, 10, -10, 99, 100, 1234567890123, INT64_MAX};
    for (int i = 0; i < 1000 + (int)(sizeof(ints) / sizeof(ints[0])); i++) {
        int64_t v = i < 1000 ? (int64_t)((uint64_t)rand() << 33 ^ (uint64_t)rand() << 2) >> (i % 60)
                             : ints[i - 1000];
        char want[32];
        snprintf(want, sizeof(want), "%lld", (long long)v);
        tm_jbuf_init(&b, 0);
        tm_jbuf_int(&b, v);
        s = take(t, &b, &len);
        REQUIRE(s);
        if (strcmp(s, want) || len != strlen(want))
            tm_test_fail(t, __FILE__, __LINE__, "%s printed as %s", want, s);
        tm_free(s);
    }
}

/* Through the cache, a run of values with repeats (and more distinct values
 * than slots, so slots are overwritten) reads exactly as tm_jbuf_double
 * writes it value by value. */
TM_TEST(jbuf_double_cached)
{
    static struct tm_jbuf_dcache cache;
    struct tm_jbuf plain, cached;
    size_t plen, clen;
    memset(&cache, 0, sizeof(cache));
    tm_jbuf_init(&plain, 0);
    tm_jbuf_init(&cached, 0);
    srand(11);
    for (int i = 0; i < 20000; i++) {
        /* idf-like values: ln((1 + n) / (1 + df)) + 1 for df in 1..1500 */
        double v = i % 7 == 0    ? (double)rand() / RAND_MAX * 1e6 - 5e5
                   : i % 11 == 0 ? (i % 2 ? 0.0 : -0.0)
                                 : log(18847.0 / (1.0 + rand() % 1500)) + 1.0;
        tm_jbuf_double(&plain, v);
        tm_jbuf_double_cached(&cached, v, &cache);
        tm_jbuf_put(&plain, ",", 1);
        tm_jbuf_put(&cached, ",", 1);
    }
    char *p = take(t, &plain, &plen);
    char *c = take(t, &cached, &clen);
    REQUIRE(p && c);
    CHECK(plen == clen);
    CHECK(strcmp(p, c) == 0);
    tm_free(p);
    tm_free(c);
}

TM_TEST(jbuf_put_and_printf)
{
    struct tm_jbuf b;
    size_t len = 0;
    tm_jbuf_init(&b, 0);
    tm_jbuf_put(&b, "ab\0cd", 5); /* bytes, NULs included */
    tm_jbuf_printf(&b, "[%d]", 7);
    /* Longer than printf's small buffer: the second path. */
    char big[300];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tm_jbuf_printf(&b, "<%s>", big);
    CHECK_INT_EQ(b.status, TM_OK);
    CHECK_INT_EQ(b.data[b.len], '\0');
    char *s = take(t, &b, &len);
    REQUIRE(s);
    CHECK_INT_EQ(len, 5 + 3 + 2 + 299);
    CHECK(!memcmp(s, "ab\0cd[7]<z", 10) && s[len - 1] == '>' && s[len] == '\0');
    tm_free(s);
    CHECK(b.data == NULL && b.len == 0); /* detach resets b */

    /* An empty buffer detaches to an empty, allocated string. */
    tm_jbuf_init(&b, 0);
    s = take(t, &b, &len);
    REQUIRE(s);
    CHECK_STR_EQ(s, "");
    CHECK(len == 0);
    tm_free(s);

    /* Release frees what was written; the buffer can be written again. */
    tm_jbuf_init(&b, 0);
    tm_jbuf_puts(&b, "gone");
    tm_jbuf_release(&b);
    tm_jbuf_puts(&b, "kept");
    s = take(t, &b, &len);
    CHECK_STR_EQ(s, "kept");
    tm_free(s);
}

/* The cap: exactly cap bytes fit; one more fails, and the failure stays. */
TM_TEST(jbuf_cap)
{
    struct tm_jbuf b;
    size_t len = 99;
    tm_status st;
    tm_jbuf_init(&b, 8);
    tm_jbuf_puts(&b, "12345");
    tm_jbuf_puts(&b, "678");
    CHECK_INT_EQ(b.status, TM_OK);
    CHECK_INT_EQ(b.len, 8);
    tm_jbuf_puts(&b, "x");
    CHECK_INT_EQ(b.status, TM_ETOOBIG);
    CHECK_INT_EQ(b.len, 8); /* nothing of the failed append */
    tm_jbuf_puts(&b, "");   /* later appends, even empty ones, do nothing */
    tm_jbuf_printf(&b, "%d", 1);
    tm_jbuf_string(&b, "a", 1);
    tm_jbuf_double(&b, 1.0);
    CHECK_INT_EQ(b.len, 8);
    CHECK(tm_jbuf_detach(&b, &len, &st) == NULL);
    CHECK_INT_EQ(st, TM_ETOOBIG);
    CHECK_INT_EQ(len, 99); /* untouched on failure */
    CHECK(b.data == NULL);

    /* printf past the cap through the long path. */
    tm_jbuf_init(&b, 200);
    tm_jbuf_printf(&b, "%0300d", 1);
    CHECK_INT_EQ(b.status, TM_ETOOBIG);
    tm_jbuf_release(&b);

    /* A string literal is capped with its escapes counted. */
    tm_jbuf_init(&b, 7);
    tm_jbuf_string(&b, "\n\n\n", 3); /* "\n\n\n" with quotes: 8 bytes */
    CHECK(tm_jbuf_detach(&b, &len, &st) == NULL);
    CHECK_INT_EQ(st, TM_ETOOBIG);
}

/* A failed allocation is remembered as TM_ENOMEM and nothing leaks. */
TM_TEST(jbuf_allocation_failures)
{
    for (long n = 1;; n++) {
        struct tm_jbuf b;
        tm_status st;
        size_t len;
        tm_testalloc_fail_at(n);
        tm_jbuf_init(&b, 0);
        for (int i = 0; i < 200; i++) /* 2000 bytes: grows a few times */
            tm_jbuf_printf(&b, "%09d,", i);
        char *s = tm_jbuf_detach(&b, &len, &st);
        if (s) {
            CHECK_INT_EQ(st, TM_OK);
            CHECK_INT_EQ(len, 2000);
        } else {
            CHECK_INT_EQ(st, TM_ENOMEM);
        }
        tm_free(s);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (s) {
            CHECK(n > 3);
            break;
        }
        if (n > 100) {
            tm_test_fail(t, __FILE__, __LINE__, "never succeeded");
            break;
        }
    }
    tm_alloc_set_methods(NULL);
}
