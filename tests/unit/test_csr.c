/* test_csr.c - CSR allocation, transpose, norms and validation. */
#include "core/csr.h"
#include "harness.h"

/* [[1 0 2] [0 0 0] [3 4 0]] */
static tm_status make_small(struct tm_csr *m)
{
    tm_status st = tm_csr_init(m, 3, 3, 4, NULL);
    if (st != TM_OK)
        return st;
    int64_t indptr[] = {0, 2, 2, 4};
    int32_t indices[] = {0, 2, 0, 1};
    double data[] = {1, 2, 3, 4};
    memcpy(m->indptr, indptr, sizeof(indptr));
    memcpy(m->indices, indices, sizeof(indices));
    memcpy(m->data, data, sizeof(data));
    return TM_OK;
}

TM_TEST(csr_transpose_twice_is_identity)
{
    struct tm_csr m, mt, mtt;
    REQUIRE(make_small(&m) == TM_OK);
    REQUIRE(tm_csr_transpose(&m, &mt, NULL) == TM_OK);
    CHECK_INT_EQ(tm_csr_validate(&mt, NULL), TM_OK);
    /* column 0 of m is (1, 0, 3) */
    CHECK_INT_EQ(mt.indptr[1], 2);
    CHECK_INT_EQ(mt.indices[0], 0);
    CHECK_INT_EQ(mt.indices[1], 2);
    CHECK(mt.data[1] == 3);
    REQUIRE(tm_csr_transpose(&mt, &mtt, NULL) == TM_OK);
    CHECK(memcmp(m.indptr, mtt.indptr, 4 * sizeof(int64_t)) == 0);
    CHECK(memcmp(m.indices, mtt.indices, 4 * sizeof(int32_t)) == 0);
    CHECK(memcmp(m.data, mtt.data, 4 * sizeof(double)) == 0);
    CHECK_NEAR(tm_csr_frobenius_sq(&m), 30.0, 1e-15);
    tm_csr_release(&m);
    tm_csr_release(&mt);
    tm_csr_release(&mtt);
}

TM_TEST(csr_validate_rejects_broken_structure)
{
    struct tm_csr m;
    char err[TM_ERR_SIZE];
    REQUIRE(make_small(&m) == TM_OK);
    CHECK_INT_EQ(tm_csr_validate(&m, err), TM_OK);
    m.indices[1] = 0; /* duplicate column in row 0 */
    CHECK_INT_EQ(tm_csr_validate(&m, err), TM_EINVAL);
    CHECK(strstr(err, "row 0") != NULL);
    m.indices[1] = 3; /* out of range */
    CHECK_INT_EQ(tm_csr_validate(&m, err), TM_EINVAL);
    tm_csr_release(&m);
    CHECK_INT_EQ(tm_csr_init(&m, -1, 3, 0, err), TM_ERANGE);
}
