/*
 * job_state.h - the states of a job and the names the API gives them.
 *
 * A job is queued, then running, then ends succeeded, failed or cancelled; a
 * running job whose worker died goes back to queued (server/jobs.c owns the
 * moves). The names are part of the API (api/openapi.yaml's State) and of
 * stored rows.
 * Thread-safety: reentrant.
 */
#ifndef TM_API_JOB_STATE_H
#define TM_API_JOB_STATE_H

enum tm_job_state {
    TM_JOB_QUEUED,
    TM_JOB_RUNNING,
    TM_JOB_SUCCEEDED,
    TM_JOB_FAILED,
    TM_JOB_CANCELLED,
    TM__JOB_STATE_COUNT
};

/* "queued", ...; tm_job_state_parse returns -1 for an unknown name. */
const char *tm_job_state_name(enum tm_job_state state);
int tm_job_state_parse(const char *name);
static inline int tm_job_state_final(enum tm_job_state s)
{
    return s == TM_JOB_SUCCEEDED || s == TM_JOB_FAILED || s == TM_JOB_CANCELLED;
}

#endif
