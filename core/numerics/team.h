/*
 * team.h - a team of threads that stays up between parallel loops.
 *
 * The CPU backend's kernels are short and many (hundreds of parallel calls
 * of a few ms in a Lanczos fit), and creating and joining their threads
 * each time, plus the page faults of fresh stacks, was a measurable part of
 * them (bench/NOTES.md, "The thread team"). A team starts its threads once; a run hands the
 * same function to every member and returns when all are done; members can
 * meet at barriers inside a run. Idle members spin a little, then sleep.
 * Thread-safety: one owner at a time, who starts runs one after the other
 * (a run may not start another run of the same team).
 */
#ifndef TM_CORE_NUMERICS_TEAM_H
#define TM_CORE_NUMERICS_TEAM_H

struct tm_team;

/*
 * A team of n_threads members: the caller of tm_team_run is member 0, the
 * others are threads started here. A thread that cannot be started only
 * makes the team smaller (tm_team_size), as does n_threads < 1; NULL only
 * when the team's own memory cannot be had. Free with tm_team_free.
 */
struct tm_team *tm_team_new(int n_threads);

/* Stops and joins the threads. NULL is allowed. */
void tm_team_free(struct tm_team *team);

int tm_team_size(const struct tm_team *team);

/* fn(arg, member, size) on every member, member 0 on the calling thread;
 * returns when every member has returned. */
void tm_team_run(struct tm_team *team, void (*fn)(void *arg, int member, int size), void *arg);

/* Inside a run: waits until every member has called it. Every member must
 * call it the same number of times in a run. */
void tm_team_sync(struct tm_team *team);

#endif
