/* job_state.c - job state names (see job_state.h). */
#include "api/job_state.h"

#include <string.h>

static const char *const state_names[TM__JOB_STATE_COUNT] = {"queued", "running", "succeeded",
                                                             "failed", "cancelled"};

const char *tm_job_state_name(enum tm_job_state state)
{
    return (unsigned)state < TM__JOB_STATE_COUNT ? state_names[state] : "unknown";
}

int tm_job_state_parse(const char *name)
{
    for (int i = 0; i < TM__JOB_STATE_COUNT; i++)
        if (name && !strcmp(name, state_names[i]))
            return i;
    return -1;
}
