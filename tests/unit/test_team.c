/* test_team.c - the thread team: every member runs, barriers hold, runs
 * follow one another, and a team that cannot have its memory says so. */
#include <stdatomic.h>

#include "core/numerics/team.h"
#include "harness.h"
#include "testalloc.h"

#define PHASES 50

struct phased {
    struct tm_team *team;
    atomic_int calls;
    atomic_int member_mask;
    atomic_int in_phase[PHASES];
    atomic_int behind; /* a member saw a phase not yet finished by all */
    int size_seen;
};

/* Each member adds to every phase's count, then meets the others: after
 * the barrier, the phase must be complete for everyone. */
static void phased_member(void *arg, int member, int size)
{
    struct phased *p = arg;
    atomic_fetch_add(&p->calls, 1);
    atomic_fetch_or(&p->member_mask, 1 << member);
    if (member == 0)
        p->size_seen = size;
    for (int ph = 0; ph < PHASES; ph++) {
        atomic_fetch_add(&p->in_phase[ph], 1);
        tm_team_sync(p->team);
        if (atomic_load(&p->in_phase[ph]) != size)
            atomic_store(&p->behind, 1);
    }
}

TM_TEST(team_runs_every_member_and_barriers_hold)
{
    for (int n = 0; n <= 5; n++) {
        struct tm_team *team = tm_team_new(n);
        REQUIRE(team != NULL);
        int size = tm_team_size(team);
        CHECK_INT_EQ(size, n < 1 ? 1 : n);
        /* Runs back to back, so that members come straight from one run's
         * end (or from sleep) into the next. */
        for (int run = 0; run < 20; run++) {
            struct phased p = {.team = team};
            tm_team_run(team, phased_member, &p);
            /* every member ran once, and all were done when run returned */
            CHECK_INT_EQ(atomic_load(&p.calls), size);
            CHECK_INT_EQ(atomic_load(&p.member_mask), (1 << size) - 1);
            CHECK_INT_EQ(p.size_seen, size);
            CHECK_INT_EQ(atomic_load(&p.behind), 0);
            CHECK_INT_EQ(atomic_load(&p.in_phase[PHASES - 1]), size);
        }
        tm_team_free(team);
    }
    tm_team_free(NULL);
}

TM_TEST(team_reports_enomem)
{
    tm_testalloc_fail_at(1);
    struct tm_team *team = tm_team_new(3);
    tm_testalloc_reset();
    CHECK(team == NULL);
    CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
}
