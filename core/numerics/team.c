/* team.c - a team of threads that stays up between parallel loops (see team.h). */
#include "core/numerics/team.h"

#include <pthread.h>
#include <stdatomic.h>

#include "core/alloc.h"

#define TEAM_MAX 64

/*
 * Waits spin this many pauses before they sleep: the gaps they bridge (a
 * barrier's phases, the serial steps between two parallel loops) are often
 * shorter than a futex wake-up (bench/NOTES.md, "The thread team").
 */
#define TEAM_SPINS 4000

struct tm_team;

struct team_slot {
    struct tm_team *team;
    int member;
};

struct tm_team {
    int size; /* members, the caller's thread included */
    pthread_t threads[TEAM_MAX];
    struct team_slot slots[TEAM_MAX];
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a run started, or the team stops */
    pthread_cond_t done; /* the last member of a run returned */
    pthread_cond_t met;  /* a barrier was passed */
    void (*fn)(void *, int, int);
    void *arg;
    atomic_int stopping;
    atomic_uint run_generation;
    atomic_int running; /* threads (not the caller) still in the run */
    atomic_int arrived;
    atomic_uint barrier_generation;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins, then sleeps on cond, until *word differs from seen; returns it. */
static unsigned wait_change(struct tm_team *team, atomic_uint *word, unsigned seen,
                            pthread_cond_t *cond)
{
    unsigned now;
    for (int spin = 0; spin < TEAM_SPINS; spin++) {
        if ((now = atomic_load_explicit(word, memory_order_acquire)) != seen)
            return now;
        cpu_relax();
    }
    pthread_mutex_lock(&team->lock);
    while ((now = atomic_load_explicit(word, memory_order_acquire)) == seen)
        pthread_cond_wait(cond, &team->lock);
    pthread_mutex_unlock(&team->lock);
    return now;
}

static void *member_main(void *arg)
{
    struct team_slot *slot = arg;
    struct tm_team *team = slot->team;
    unsigned seen = 0;
    for (;;) {
        seen = wait_change(team, &team->run_generation, seen, &team->wake);
        if (atomic_load_explicit(&team->stopping, memory_order_relaxed))
            return NULL;
        team->fn(team->arg, slot->member, team->size);
        if (atomic_fetch_sub_explicit(&team->running, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&team->lock);
            pthread_cond_broadcast(&team->done);
            pthread_mutex_unlock(&team->lock);
        }
    }
}

struct tm_team *tm_team_new(int n_threads)
{
    struct tm_team *team = tm_calloc(1, sizeof(*team));
    if (!team)
        return NULL;
    pthread_mutex_init(&team->lock, NULL);
    pthread_cond_init(&team->wake, NULL);
    pthread_cond_init(&team->done, NULL);
    pthread_cond_init(&team->met, NULL);
    atomic_init(&team->run_generation, 0);
    atomic_init(&team->running, 0);
    atomic_init(&team->stopping, 0);
    atomic_init(&team->arrived, 0);
    atomic_init(&team->barrier_generation, 0);
    if (n_threads > TEAM_MAX)
        n_threads = TEAM_MAX;
    team->size = 1;
    for (int t = 1; t < n_threads; t++) {
        team->slots[team->size] = (struct team_slot){team, team->size};
        if (pthread_create(&team->threads[team->size], NULL, member_main,
                           &team->slots[team->size]) == 0)
            team->size++;
    }
    return team;
}

void tm_team_free(struct tm_team *team)
{
    if (!team)
        return;
    pthread_mutex_lock(&team->lock);
    atomic_store_explicit(&team->stopping, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&team->run_generation, 1, memory_order_release);
    pthread_cond_broadcast(&team->wake);
    pthread_mutex_unlock(&team->lock);
    for (int t = 1; t < team->size; t++)
        pthread_join(team->threads[t], NULL);
    pthread_cond_destroy(&team->met);
    pthread_cond_destroy(&team->done);
    pthread_cond_destroy(&team->wake);
    pthread_mutex_destroy(&team->lock);
    tm_free(team);
}

int tm_team_size(const struct tm_team *team)
{
    return team->size;
}

void tm_team_run(struct tm_team *team, void (*fn)(void *arg, int member, int size), void *arg)
{
    if (team->size == 1) {
        fn(arg, 0, 1);
        return;
    }
    team->fn = fn;
    team->arg = arg;
    atomic_store_explicit(&team->running, team->size - 1, memory_order_relaxed);
    pthread_mutex_lock(&team->lock);
    atomic_fetch_add_explicit(&team->run_generation, 1, memory_order_release);
    pthread_cond_broadcast(&team->wake);
    pthread_mutex_unlock(&team->lock);
    fn(arg, 0, team->size);
    for (int spin = 0; spin < TEAM_SPINS; spin++) {
        if (atomic_load_explicit(&team->running, memory_order_acquire) == 0)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&team->lock);
    while (atomic_load_explicit(&team->running, memory_order_acquire) != 0)
        pthread_cond_wait(&team->done, &team->lock);
    pthread_mutex_unlock(&team->lock);
}

void tm_team_sync(struct tm_team *team)
{
    if (team->size == 1)
        return;
    unsigned gen = atomic_load_explicit(&team->barrier_generation, memory_order_acquire);
    if (atomic_fetch_add_explicit(&team->arrived, 1, memory_order_acq_rel) == team->size - 1) {
        atomic_store_explicit(&team->arrived, 0, memory_order_relaxed);
        pthread_mutex_lock(&team->lock);
        atomic_fetch_add_explicit(&team->barrier_generation, 1, memory_order_release);
        pthread_cond_broadcast(&team->met);
        pthread_mutex_unlock(&team->lock);
        return;
    }
    wait_change(team, &team->barrier_generation, gen, &team->met);
}
