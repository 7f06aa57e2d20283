/*
 * csvread.h - an RFC 4180 reader of the tests' own, strict, to read back
 * what api/exports.h writes: every row ends in CRLF; a field is quoted
 * (quotes doubled inside, anything else as is, commas and line breaks too)
 * or holds no comma, quote, CR or LF. Static functions, for the test files
 * that include it.
 */
#ifndef TM_TESTS_CSVREAD_H
#define TM_TESTS_CSVREAD_H

#include <stddef.h>
#include <string.h>

#define TM_CSVREAD_FIELDS 4
#define TM_CSVREAD_FIELD_SIZE 256

struct tm_csvrow {
    int n;
    char f[TM_CSVREAD_FIELDS][TM_CSVREAD_FIELD_SIZE];
};

/* Called for each row; non-zero stops the reading. */
typedef int (*tm_csvrow_fn)(void *ctx, const struct tm_csvrow *r);

/* Calls fn for each row of text: its number of rows, or -1 when text is not
 * RFC 4180 (or a row has too many fields, a field is too long, or fn says
 * stop). */
__attribute__((unused)) static long tm_csvread(const char *text, size_t len, tm_csvrow_fn fn,
                                               void *ctx)
{
    size_t i = 0;
    long rows = 0;
    struct tm_csvrow r;
    while (i < len) {
        memset(&r, 0, sizeof(r));
        for (;;) {
            if (r.n == TM_CSVREAD_FIELDS)
                return -1;
            char *f = r.f[r.n++];
            size_t fl = 0;
            if (i < len && text[i] == '"') {
                for (i++;; i++) {
                    if (i >= len)
                        return -1; /* unterminated */
                    if (text[i] == '"') {
                        if (i + 1 < len && text[i + 1] == '"')
                            i++;
                        else
                            break;
                    }
                    if (fl + 1 >= TM_CSVREAD_FIELD_SIZE)
                        return -1;
                    f[fl++] = text[i];
                }
                i++; /* the closing quote */
            } else {
                for (; i < len && text[i] != ',' && text[i] != '\r'; i++) {
                    if (text[i] == '"' || text[i] == '\n' || fl + 1 >= TM_CSVREAD_FIELD_SIZE)
                        return -1;
                    f[fl++] = text[i];
                }
            }
            f[fl] = 0;
            if (i < len && text[i] == ',') {
                i++;
                continue;
            }
            if (i + 1 < len && text[i] == '\r' && text[i + 1] == '\n') {
                i += 2;
                break;
            }
            return -1; /* a row must end in CRLF */
        }
        if (fn(ctx, &r))
            return -1;
        rows++;
    }
    return rows;
}

#endif
