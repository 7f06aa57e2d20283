/* log.c - one JSON line per event on stderr (see log.h). */
#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum tm_log_level tm__log_level = TM_LOG_INFO;
static const int log_fd = 2; /* standard error: the container runtime collects it */

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void tm_log_set_level(enum tm_log_level level)
{
    tm__log_level = level;
}

int tm_log_level_parse(const char *name)
{
    for (int i = 0; i <= TM_LOG_OFF; i++)
        if (name && !strcmp(name, level_names[i]))
            return i;
    return -1;
}

const char *tm_log_level_name(enum tm_log_level level)
{
    return (unsigned)level <= TM_LOG_OFF ? level_names[level] : "unknown";
}

/* A fixed line buffer: a log line is cut (and marked) rather than grown. */
struct line {
    char buf[4096];
    size_t len;
    int cut;
};

static void put(struct line *l, const char *s, size_t n)
{
    /* Keep room for the closing "}\n". */
    size_t room = sizeof(l->buf) - 3 - l->len;
    if (n > room) {
        n = room;
        l->cut = 1;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct line *l, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void put_string(struct line *l, const char *s)
{
    if (!s) {
        put(l, "null", 4);
        return;
    }
    put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p && !l->cut; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            put(l, e, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            putf(l, "\\u%04x", *p);
        } else {
            put(l, (const char *)p, 1);
        }
    }
    put(l, "\"", 1);
}

/* Starts l with the head: time, level and message. Returns where the head
 * ends, or 0 when even it was cut. */
static size_t line_start(struct line *l, enum tm_log_level level, const char *msg)
{
    l->len = 0;
    l->cut = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    putf(l, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", when, ts.tv_nsec / 1000000,
         tm_log_level_name(level));
    put_string(l, msg);
    return l->cut ? 0 : l->len;
}

/* ,"name":value for the field f. */
static void put_field(struct line *l, const struct tm_log_field *f)
{
    put(l, ",", 1);
    put_string(l, f->name);
    put(l, ":", 1);
    switch (f->type) {
    case 'i':
        putf(l, "%lld", f->v.i);
        break;
    case 'f':
        if (isfinite(f->v.f))
            putf(l, "%.6g", f->v.f);
        else
            put(l, "null", 4);
        break;
    case 'b':
        if (f->v.b)
            put(l, "true", 4);
        else
            put(l, "false", 5);
        break;
    default:
        put_string(l, f->v.s);
        break;
    }
}

/* Ends l and writes it with one write(2); head: line_start's answer. */
static void line_end(struct line *l, size_t head)
{
    if (l->cut) {
        /* A cut line may end anywhere, even inside an escape: keep only the
         * head, which always parses, and say so. */
        l->len = head;
        l->cut = 0;
        put(l, ",\"truncated\":true", 17);
    }
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    ssize_t off = 0;
    while ((size_t)off < l->len) {
        ssize_t n = write(log_fd, l->buf + off, l->len - (size_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += n;
    }
}

void tm__log_write(enum tm_log_level level, const char *msg, ...)
{
    int saved_errno = errno;
    struct line l;
    size_t head = line_start(&l, level, msg);

    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key)
            break;
        struct tm_log_field f;
        f.type = key[0];
        f.name = key[0] && key[1] == ':' ? key + 2 : key;
        switch (f.type) {
        case 'i':
            f.v.i = va_arg(ap, long long);
            break;
        case 'f':
            f.v.f = va_arg(ap, double);
            break;
        case 'b':
            f.v.b = va_arg(ap, int);
            break;
        default:
            f.v.s = va_arg(ap, const char *);
            break;
        }
        put_field(&l, &f);
    }
    va_end(ap);
    line_end(&l, head);
    errno = saved_errno;
}

void tm_log_fields(enum tm_log_level level, const char *msg, const struct tm_log_field *fields,
                   size_t n)
{
    if (level < tm__log_level)
        return;
    int saved_errno = errno;
    struct line l;
    size_t head = line_start(&l, level, msg);
    for (size_t i = 0; i < n; i++)
        put_field(&l, &fields[i]);
    line_end(&l, head);
    errno = saved_errno;
}
