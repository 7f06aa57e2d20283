/* test_status.c - the status table and error formatting. */
#include "core/status.h"
#include "harness.h"

TM_TEST(status_messages_cover_every_code)
{
    for (int s = 0; s < TM__STATUS_COUNT; s++) {
        CHECK(tm_strerror((tm_status)s) != NULL);
        CHECK(strcmp(tm_strerror((tm_status)s), "unknown status") != 0);
        CHECK(tm_status_name((tm_status)s)[0] == (s == TM_OK ? 'O' : 'E'));
    }
    CHECK_STR_EQ(tm_strerror((tm_status)9999), "unknown status");
    CHECK_STR_EQ(tm_status_name(TM_EINVAL), "EINVAL");
}

TM_TEST(status_errf_formats_and_truncates)
{
    char err[TM_ERR_SIZE];
    CHECK_INT_EQ(tm_errf(err, TM_ERANGE, "field %s: %d", "k", 7), TM_ERANGE);
    CHECK_STR_EQ(err, "field k: 7");
    char big[2 * TM_ERR_SIZE];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tm_errf(err, TM_EINVAL, "%s", big);
    CHECK_INT_EQ(strlen(err), TM_ERR_SIZE - 1);
    CHECK_INT_EQ(tm_errf(NULL, TM_ENOMEM, "ignored"), TM_ENOMEM);
}
