/* test_topwords.c - a topic's words against a selection made the slow way:
 * the largest non-zero weight left, the lowest term among equals. */
#include <stdlib.h>

#include "core/numerics/rng.h"
#include "core/numerics/topwords.h"
#include "harness.h"

static void reference_top(const double *col, int64_t n, int64_t n_top, int64_t *terms,
                          double *weights)
{
    char *taken = calloc((size_t)n + 1, 1);
    for (int64_t w = 0; w < n_top; w++) {
        int64_t best = -1;
        for (int64_t j = 0; j < n; j++)
            if (!taken[j] && col[j] != 0.0 && (best < 0 || col[j] > col[best]))
                best = j;
        terms[w] = best;
        weights[w] = best < 0 ? 0.0 : col[best];
        if (best >= 0)
            taken[best] = 1;
    }
    free(taken);
}

/* Weights from a few values, so that ties and zeros are common; `spread`
 * adds distinct small parts for columns without ties. */
static void fill(struct tm_rng *rng, double *comp, int64_t len, double zero_share, int spread)
{
    static const double values[] = {-2.0, -0.5, 0.25, 0.5, 1.0, 3.0};
    for (int64_t i = 0; i < len; i++) {
        if (tm_rng_uniform(rng) < zero_share)
            comp[i] = 0.0;
        else
            comp[i] = values[tm_rng_below(rng, 6)] + (spread ? tm_rng_uniform(rng) * 1e-3 : 0.0);
    }
}

TM_TEST(top_words_match_a_stable_selection)
{
    struct tm_rng rng;
    tm_rng_init(&rng, 11);
    /* n around the block size and far above it; n_top from 1 to past the
     * column's non-zeros; columns of zeros only, of ties, of negatives */
    const int64_t ns[] = {1, 5, 15, 16, 17, 33, 200, 1000};
    const int64_t tops[] = {1, 3, 10, 40};
    const double zero_shares[] = {0.0, 0.5, 0.97, 1.0};
    int cases = 0;
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof tops / sizeof tops[0]; b++)
            for (size_t z = 0; z < sizeof zero_shares / sizeof zero_shares[0]; z++)
                for (int spread = 0; spread < 2; spread++) {
                    const int64_t n = ns[a], n_top = tops[b], k = 3;
                    double *comp = malloc(sizeof(double) * (size_t)(n * k));
                    int64_t *terms = malloc(sizeof(int64_t) * (size_t)(n_top * k));
                    double *weights = malloc(sizeof(double) * (size_t)(n_top * k));
                    int64_t want_terms[40];
                    double want_weights[40];
                    REQUIRE(comp && terms && weights);
                    fill(&rng, comp, n * k, zero_shares[z], spread);
                    tm_top_words(comp, k, n, n_top, terms, weights);
                    for (int64_t c = 0; c < k; c++) {
                        reference_top(comp + c * n, n, n_top, want_terms, want_weights);
                        for (int64_t w = 0; w < n_top; w++) {
                            CHECK_INT_EQ(terms[c * n_top + w], want_terms[w]);
                            CHECK(weights[c * n_top + w] == want_weights[w]);
                        }
                    }
                    free(comp);
                    free(terms);
                    free(weights);
                    cases++;
                }
    CHECK_INT_EQ(cases, 256);
}

TM_TEST(top_words_of_a_late_rise_are_found_past_skipped_blocks)
{
    /* A full list early, then larger weights deep in blocks the threshold
     * would otherwise skip: the last block's last entry is the best. */
    const int64_t n = 100, n_top = 4;
    double comp[100];
    int64_t terms[4];
    double weights[4];
    for (int64_t j = 0; j < n; j++)
        comp[j] = 1.0 / (double)(j + 1);
    comp[47] = 5.0;
    comp[99] = 7.0;
    comp[63] = 5.0; /* ties 47: after it */
    tm_top_words(comp, 1, n, n_top, terms, weights);
    CHECK_INT_EQ(terms[0], 99);
    CHECK_INT_EQ(terms[1], 47);
    CHECK_INT_EQ(terms[2], 63);
    CHECK_INT_EQ(terms[3], 0);
    CHECK(weights[0] == 7.0 && weights[1] == 5.0 && weights[2] == 5.0 && weights[3] == 1.0);
}
