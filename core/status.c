/* status.c - messages and names for tm_status, generated from TM_STATUS_MAP. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const messages[] = {
#define TM__STATUS_MSG(name, msg) msg,
    TM_STATUS_MAP(TM__STATUS_MSG)
#undef TM__STATUS_MSG
};

static const char *const names[] = {
#define TM__STATUS_NAME(name, msg) #name,
    TM_STATUS_MAP(TM__STATUS_NAME)
#undef TM__STATUS_NAME
};

const char *tm_strerror(tm_status status)
{
    if ((unsigned)status >= TM__STATUS_COUNT)
        return "unknown status";
    return messages[status];
}

const char *tm_status_name(tm_status status)
{
    if ((unsigned)status >= TM__STATUS_COUNT)
        return "EUNKNOWN";
    return names[status];
}

tm_status tm_errf(char *err, tm_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, TM_ERR_SIZE, fmt, ap);
        va_end(ap);
    }
    return status;
}
