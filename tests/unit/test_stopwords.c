/* test_stopwords.c - the generated English stop list is scikit-learn's. */
#include "core/text/stopwords.h"
#include "harness.h"

TM_TEST(stopwords_english_is_sklearns_318_sorted)
{
    const char *const *w;
    size_t n = tm_stopwords_english(&w);
    CHECK_INT_EQ(n, 318);
    for (size_t i = 1; i < n; i++)
        CHECK(strcmp(w[i - 1], w[i]) < 0);
    CHECK_STR_EQ(w[0], "a");
    CHECK_STR_EQ(w[n - 1], "yourselves");
    /* a few that surprise people: sklearn's list has them */
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found += !strcmp(w[i], "fire") + !strcmp(w[i], "system") + !strcmp(w[i], "bill");
    CHECK_INT_EQ(found, 3);
}
