/* fixture.c - the fixture readers of fixture.h. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

char *tm_test_read_fixture(const char *name, size_t *len)
{
    FILE *f = fopen(tm_test_fixture(name), "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    return buf;
}

static int is_sep(const char *seps, char c)
{
    return c != '\0' && strchr(seps, c) != NULL;
}

char *tm_test_unhex(const char **p, const char *seps, size_t *len)
{
    const char *s = *p;
    while (is_sep(seps, *s))
        s++;
    size_t n = 0;
    while (s[n] != '\0' && s[n] != '\n' && !is_sep(seps, s[n]))
        n++;
    char *out = malloc(n / 2 + 1);
    *len = 0;
    if (!(n == 1 && s[0] == '-'))
        for (size_t i = 0; i + 1 < n; i += 2) {
            char h[3] = {s[i], s[i + 1], 0};
            out[(*len)++] = (char)strtol(h, NULL, 16);
        }
    out[*len] = '\0';
    *p = s + n;
    return out;
}
