/* test_matrix_cache.c - the cache of vectorized corpora
 * (server/matrix_cache.h): the byte budget, LRU eviction of unheld entries,
 * the key scheme and invalidation by corpus. */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "harness.h"
#include "server/matrix_cache.h"
#include "testalloc.h"

static void fake_vectorized(struct tm_vectorized *v, int64_t nnz)
{
    memset(v, 0, sizeof(*v));
    char err[TM_ERR_SIZE];
    tm_csr_init(&v->matrix, 1, 1, nnz, err);
    v->matrix.indptr[1] = nnz;
}

TM_TEST(matrix_cache_bounds)
{
    struct tm_matrix_cache *c;
    REQUIRE(tm_matrix_cache_new(&c, 4000) == TM_OK);
    struct tm_vectorized v;
    struct tm_matrix_ref *r1, *r2, *r3, *g;
    fake_vectorized(&v, 100); /* ~1.2 kB */
    const struct tm_vectorized *p1 = tm_matrix_cache_put(c, "c_1\nA", 5, &v, &r1);
    CHECK(p1 && v.matrix.indptr == NULL);
    CHECK(tm_matrix_cache_get(c, "c_1\nA", 5, &g) == p1);
    tm_matrix_cache_release(c, g);
    fake_vectorized(&v, 100);
    tm_matrix_cache_put(c, "c_2\nA", 5, &v, &r2);
    tm_matrix_cache_release(c, r1);
    tm_matrix_cache_release(c, r2);
    /* A third entry evicts the least recently used unheld one. */
    fake_vectorized(&v, 150);
    tm_matrix_cache_put(c, "c_3\nA", 5, &v, &r3);
    tm_matrix_cache_release(c, r3);
    struct tm_matrix_cache_stats st;
    tm_matrix_cache_stats(c, &st);
    CHECK(st.bytes <= 4000);
    CHECK(tm_matrix_cache_get(c, "c_1\nA", 5, &g) == NULL);
    CHECK(tm_matrix_cache_get(c, "c_3\nA", 5, &g) != NULL);
    tm_matrix_cache_release(c, g);
    /* Too big for the budget: handed back, not kept. */
    fake_vectorized(&v, 1000);
    CHECK(tm_matrix_cache_put(c, "c_4\nA", 5, &v, &r1) != NULL);
    tm_matrix_cache_release(c, r1);
    CHECK(tm_matrix_cache_get(c, "c_4\nA", 5, &g) == NULL);
    /* Invalidation by corpus. */
    tm_matrix_cache_invalidate(c, "c_3");
    CHECK(tm_matrix_cache_get(c, "c_3\nA", 5, &g) == NULL);
    tm_matrix_cache_stats(c, &st);
    CHECK(st.hits == 2 && st.misses == 3);
    tm_matrix_cache_free(c);
}

TM_TEST(matrix_cache_key)
{
    char *k;
    size_t n;
    REQUIRE(tm_matrix_cache_key("c_1", 3, "vec\0tor", 7, &k, &n) == TM_OK);
    CHECK_INT_EQ(n, 13);
    CHECK(!memcmp(k, "c_1\n3\nvec\0tor", 14)); /* NUL-terminated too */
    tm_free(k);
    /* The widest document count fits. */
    REQUIRE(tm_matrix_cache_key("c_1", INT64_MIN, "v", 1, &k, &n) == TM_OK);
    CHECK_STR_EQ(k, "c_1\n-9223372036854775808\nv");
    CHECK_INT_EQ(n, strlen(k));
    tm_free(k);

    tm_testalloc_fail_at(1);
    k = (char *)"untouched";
    CHECK_INT_EQ(tm_matrix_cache_key("c_1", 3, "v", 1, &k, &n), TM_ENOMEM);
    CHECK(k == NULL);
    tm_testalloc_reset();
    CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
    tm_alloc_set_methods(NULL);
}

/* Puts a small matrix under tm_matrix_cache_key(id, n_docs, vec) and
 * releases it. */
static void put(struct tm_matrix_cache *c, const char *id, int64_t n_docs, const char *vec)
{
    char *k;
    size_t n;
    struct tm_vectorized v;
    struct tm_matrix_ref *r;
    if (tm_matrix_cache_key(id, n_docs, vec, strlen(vec), &k, &n))
        return;
    fake_vectorized(&v, 10);
    tm_matrix_cache_put(c, k, n, &v, &r);
    tm_matrix_cache_release(c, r);
    tm_free(k);
}

/* 1 when the cache holds the matrix of (id, n_docs, vec). */
static int has(struct tm_matrix_cache *c, const char *id, int64_t n_docs, const char *vec)
{
    char *k;
    size_t n;
    struct tm_matrix_ref *r;
    if (tm_matrix_cache_key(id, n_docs, vec, strlen(vec), &k, &n))
        return 0;
    const struct tm_vectorized *v = tm_matrix_cache_get(c, k, n, &r);
    tm_matrix_cache_release(c, r);
    tm_free(k);
    return v != NULL;
}

TM_TEST(matrix_cache_invalidate_by_corpus)
{
    struct tm_matrix_cache *c;
    REQUIRE(tm_matrix_cache_new(&c, 1 << 20) == TM_OK);
    put(c, "c_1", 3, "tfidf");
    put(c, "c_1", 4, "tfidf"); /* after an append */
    put(c, "c_1", 3, "count");
    put(c, "c_10", 3, "tfidf"); /* an id that c_1 is a prefix of */
    put(c, "c_2", 1, "c_1\n");  /* a vectorizer key that looks like a corpus */
    CHECK(has(c, "c_1", 3, "tfidf") && has(c, "c_1", 4, "tfidf") && has(c, "c_1", 3, "count"));
    CHECK(!has(c, "c_1", 5, "tfidf"));

    /* An entry a job holds stays readable until released. */
    char *k;
    size_t n;
    struct tm_matrix_ref *held;
    REQUIRE(tm_matrix_cache_key("c_1", 3, "count", 5, &k, &n) == TM_OK);
    const struct tm_vectorized *hv = tm_matrix_cache_get(c, k, n, &held);
    CHECK(hv != NULL);

    tm_matrix_cache_invalidate(c, "c_1");
    CHECK(!has(c, "c_1", 3, "tfidf") && !has(c, "c_1", 4, "tfidf") && !has(c, "c_1", 3, "count"));
    CHECK(has(c, "c_10", 3, "tfidf"));
    CHECK(has(c, "c_2", 1, "c_1\n"));
    struct tm_matrix_cache_stats st;
    tm_matrix_cache_stats(c, &st);
    CHECK_INT_EQ(st.entries, 2);
    CHECK(hv && hv->matrix.n_rows == 1);
    tm_matrix_cache_release(c, held); /* frees it: ASan would see a leak or a double free */
    tm_free(k);
    tm_matrix_cache_free(c);
}
