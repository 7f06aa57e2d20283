/*
 * progress.h - progress reporting and cancellation for long core/ calls.
 *
 * Long-running calls (vectorizing, fitting) take a tm_progress and call it
 * at stage boundaries and regularly inside loops. The callback returns 0 to
 * go on and non-zero to cancel; the call then stops soon after, releases what
 * it took and returns TM_ECANCELLED.
 * Thread-safety: core serialises calls to one tm_progress, but they may come
 * from any of the threads a core call starts; the callback must not block.
 */
#ifndef TM_CORE_PROGRESS_H
#define TM_CORE_PROGRESS_H

struct tm_progress {
    /* stage: a static string such as "tokenize" or "nmf"; fraction in [0, 1]. */
    int (*report)(void *ctx, const char *stage, double fraction);
    void *ctx;
};

/* NULL-safe call: 0 when there is no callback. */
static inline int tm_progress_report(const struct tm_progress *p, const char *stage,
                                     double fraction)
{
    return p && p->report ? p->report(p->ctx, stage, fraction) : 0;
}

#endif
