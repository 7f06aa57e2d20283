/* test_job_state.c - the job states' names, as the API and the store spell them. */
#include "api/job_state.h"
#include "harness.h"

TM_TEST(job_state_names_round_trip)
{
    static const char *const api[] = {"queued", "running", "succeeded", "failed", "cancelled"};
    REQUIRE(sizeof(api) / sizeof(api[0]) == TM__JOB_STATE_COUNT);
    for (int s = 0; s < TM__JOB_STATE_COUNT; s++) {
        CHECK_STR_EQ(tm_job_state_name((enum tm_job_state)s), api[s]);
        CHECK_INT_EQ(tm_job_state_parse(api[s]), s);
    }
    CHECK_STR_EQ(tm_job_state_name((enum tm_job_state)TM__JOB_STATE_COUNT), "unknown");
    CHECK_STR_EQ(tm_job_state_name((enum tm_job_state) - 1), "unknown");
    CHECK_INT_EQ(tm_job_state_parse("Queued"), -1);
    CHECK_INT_EQ(tm_job_state_parse("queued "), -1);
    CHECK_INT_EQ(tm_job_state_parse(""), -1);
    CHECK_INT_EQ(tm_job_state_parse(NULL), -1);
}

TM_TEST(job_state_final_states)
{
    CHECK(!tm_job_state_final(TM_JOB_QUEUED));
    CHECK(!tm_job_state_final(TM_JOB_RUNNING));
    CHECK(tm_job_state_final(TM_JOB_SUCCEEDED));
    CHECK(tm_job_state_final(TM_JOB_FAILED));
    CHECK(tm_job_state_final(TM_JOB_CANCELLED));
}
