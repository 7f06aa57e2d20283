/* error.c - api/'s error struct, its one-line form and its HTTP body (see error.h). */
#include "api/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/jbuf.h"

static void copy_trunc(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void tm_api_error_clear(struct tm_api_error *e)
{
    if (!e)
        return;
    memset(e, 0, sizeof(*e));
    e->status = TM_OK;
    e->offset = -1;
}

tm_status tm_api_errorf(struct tm_api_error *e, tm_status status, const char *field, int64_t offset,
                        const char *fmt, ...)
{
    if (!e)
        return status;
    tm_api_error_clear(e);
    e->status = status;
    e->offset = offset;
    if (field)
        copy_trunc(e->field, sizeof(e->field), field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return status;
}

void tm_api_error_locate(struct tm_api_error *e, const char *text, size_t len)
{
    if (!e || e->offset < 0 || !text)
        return;
    size_t end = (size_t)e->offset < len ? (size_t)e->offset : len;
    int64_t line = 1, col = 1;
    tm__text_advance(text, end, &line, &col);
    e->line = line;
    e->column = col;
}

void tm__text_advance(const char *text, size_t n, int64_t *line, int64_t *column)
{
    int64_t l = *line, c = *column;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *column = c;
}

void tm_api_error_prefix(struct tm_api_error *e, const char *prefix)
{
    if (!e || !prefix || !*prefix)
        return;
    char buf[sizeof(e->field)];
    const char *parts[3] = {prefix, e->field[0] && e->field[0] != '[' ? "." : "", e->field};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(parts[i]);
        if (l > sizeof(buf) - 1 - n)
            l = sizeof(buf) - 1 - n; /* truncated: the field is for people */
        memcpy(buf + n, parts[i], l);
        n += l;
    }
    buf[n] = '\0';
    memcpy(e->field, buf, n + 1);
}

const char *tm_api_error_format(const struct tm_api_error *e, char *buf, size_t size)
{
    if (!size)
        return buf;
    int n;
    if (e->field[0])
        n = snprintf(buf, size, "%s: %s", e->field, e->message);
    else
        n = snprintf(buf, size, "%s", e->message[0] ? e->message : tm_strerror(e->status));
    if (n < 0 || (size_t)n >= size || e->line <= 0)
        return buf;
    /* A field that already names the line ("line 7: text") gets only the
     * column, and a column of 0 (unknown) is left out. */
    if (!strncmp(e->field, "line ", 5)) {
        if (e->column > 0)
            snprintf(buf + n, size - (size_t)n, " (column %lld)", (long long)e->column);
    } else if (e->column > 0) {
        snprintf(buf + n, size - (size_t)n, " (line %lld, column %lld)", (long long)e->line,
                 (long long)e->column);
    } else {
        snprintf(buf + n, size - (size_t)n, " (line %lld)", (long long)e->line);
    }
    return buf;
}

const char *tm_api_error_code(tm_status status)
{
    switch (status) {
    case TM_OK:
        return "ok";
    case TM_ENOMEM:
        return "out_of_memory";
    case TM_EINVAL:
    case TM_ERANGE:
        return "invalid_spec";
    case TM_EEMPTY:
        return "empty_corpus";
    case TM_ENOTERMS:
        return "no_terms";
    case TM_ETOOBIG:
        return "too_large";
    case TM_ECANCELLED:
        return "cancelled";
    case TM_ENOTBUILT:
        return "not_built";
    case TM_ENODEV:
        return "no_device";
    case TM_ENUMERIC:
        return "numerical_failure";
    case TM_ELAPACK:
        return "linear_algebra_failure";
    case TM_EIO:
        return "io_error";
    case TM_EPARSE:
        return "malformed_input";
    case TM_ENOTFOUND:
        return "not_found";
    case TM_EBUSY:
        return "busy";
    case TM_EDEVICE:
        return "device_failure";
    case TM_ENOSPC:
        return "insufficient_storage";
    default:
        return "internal_error";
    }
}

int tm_api_error_http_status(tm_status status)
{
    switch (status) {
    case TM_OK:
        return 200;
    case TM_EPARSE:
        return 400;
    case TM_ETOOBIG:
        return 413;
    case TM_EINVAL:
    case TM_ERANGE:
    case TM_EEMPTY:
    case TM_ENOTERMS:
    case TM_ENOTBUILT:
    case TM_ENODEV:
    case TM_ENUMERIC:
        return 422;
    case TM_ENOTFOUND:
        return 404;
    case TM_EBUSY:
        return 409;
    case TM_ENOMEM:
        return 503;
    case TM_ENOSPC:
        return 507;
    default:
        return 500;
    }
}

void tm__jbuf_error_open(struct tm_jbuf *b, const char *code, const char *message,
                         const char *field)
{
    tm_jbuf_puts(b, "{\"error\":{\"code\":");
    tm_jbuf_string(b, code, strlen(code));
    tm_jbuf_puts(b, ",\"message\":");
    tm_jbuf_string(b, message, strlen(message));
    if (field && field[0]) {
        tm_jbuf_puts(b, ",\"field\":");
        tm_jbuf_string(b, field, strlen(field));
    }
}

tm_status tm_api_error_render(const struct tm_api_error *e, char **out, size_t *len)
{
    struct tm_jbuf b;
    tm_status st;
    tm_jbuf_init(&b, 0);
    tm__jbuf_error_open(&b, tm_api_error_code(e->status),
                        e->message[0] ? e->message : tm_strerror(e->status), e->field);
    if (e->offset >= 0) {
        tm_jbuf_puts(&b, ",\"offset\":");
        tm_jbuf_int(&b, e->offset);
        if (e->line > 0) {
            tm_jbuf_printf(&b, ",\"line\":%lld,\"column\":%lld", (long long)e->line,
                           (long long)e->column);
        }
    }
    tm_jbuf_puts(&b, "}}");
    *out = tm_jbuf_detach(&b, len, &st);
    return st;
}
