/*
 * log.h - structured logging for server/: one JSON object per line on
 * stderr, one line per event. Messages are lower-case and short ("request",
 * "job transition"); detail goes into typed fields:
 *
 *     TM_LOG(TM_LOG_INFO, "request", "s:method", m, "i:status", 200LL,
 *            "f:duration_ms", 0.4, NULL);
 *
 * A field is a "T:name" key followed by its value: s = const char * (NULL
 * prints null), i = long long, f = double, b = int printed as a boolean.
 * The macro checks the level before its arguments are evaluated (Redis's
 * serverLog), so a disabled level costs one comparison.
 * Thread-safety: safe from any thread; each line is written with one write(2).
 */
#ifndef TM_SERVER_LOG_H
#define TM_SERVER_LOG_H

#include <stddef.h>

enum tm_log_level { TM_LOG_DEBUG, TM_LOG_INFO, TM_LOG_WARN, TM_LOG_ERROR, TM_LOG_OFF };

/* The minimum level printed; set once at start-up, before threads start. */
extern enum tm_log_level tm__log_level;

#define TM_LOG(level, msg, ...)                                                                    \
    do {                                                                                           \
        if ((level) >= tm__log_level)                                                              \
            tm__log_write((level), (msg), __VA_ARGS__);                                            \
    } while (0)

void tm_log_set_level(enum tm_log_level level);
/* "debug", "info", "warn", "error", "off"; -1 when unknown. */
int tm_log_level_parse(const char *name);
const char *tm_log_level_name(enum tm_log_level level);

/* Use TM_LOG; the variadic list is "T:key", value pairs ended by NULL. */
void tm__log_write(enum tm_log_level level, const char *msg, ...);

/* A field of tm_log_fields: its type letter and name as a TM_LOG key
 * gives them ('i' and "port" for "i:port"), and the value in the member
 * the type names. */
struct tm_log_field {
    char type;
    const char *name;
    union {
        const char *s;
        long long i;
        double f;
        int b;
    } v;
};

/* TM_LOG for fields known only at run time (a table's rows, as the
 * configuration line): the line TM_LOG writes with those n fields. fields
 * borrowed. Checks the level first. */
void tm_log_fields(enum tm_log_level level, const char *msg, const struct tm_log_field *fields,
                   size_t n);

#endif
