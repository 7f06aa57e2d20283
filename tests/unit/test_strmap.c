/* test_strmap.c - the interning hash table: ids, growth, caps, failures. */
#include "core/alloc.h"
#include "core/text/strmap.h"
#include "harness.h"
#include "testalloc.h"

TM_TEST(strmap_interns_dense_ids_through_growth)
{
    struct tm_strmap m;
    REQUIRE(tm_strmap_init(&m, 1 << 20) == TM_OK);
    char key[32];
    for (int i = 0; i < 50000; i++) {
        /* short keys, keys of exactly 8 bytes and long ones */
        int len = snprintf(key, sizeof(key), i % 3 ? "k%d" : "long-key-number-%d", i);
        uint32_t id;
        int added;
        REQUIRE(tm_strmap_intern(&m, key, (size_t)len, &id, &added) == TM_OK);
        CHECK(added && id == (uint32_t)i);
        m.user[id] = (uint64_t)i * 7;
    }
    for (int i = 0; i < 50000; i++) {
        int len = snprintf(key, sizeof(key), i % 3 ? "k%d" : "long-key-number-%d", i);
        uint32_t id;
        int added;
        REQUIRE(tm_strmap_intern(&m, key, (size_t)len, &id, &added) == TM_OK);
        CHECK(!added && id == (uint32_t)i && m.user[id] == (uint64_t)i * 7);
        CHECK_INT_EQ(tm_strmap_find(&m, key, (size_t)len), i);
        size_t klen;
        const char *k = tm_strmap_key(&m, i, &klen);
        CHECK(klen == (size_t)len && memcmp(k, key, klen) == 0);
    }
    CHECK_INT_EQ(tm_strmap_find(&m, "absent", 6), -1);
    /* keys differing only past 8 bytes, or by a trailing NUL, are distinct */
    uint32_t a, b, c, e;
    int added;
    REQUIRE(tm_strmap_intern(&m, "abcdefgh-1", 10, &a, &added) == TM_OK);
    REQUIRE(tm_strmap_intern(&m, "abcdefgh-2", 10, &b, &added) == TM_OK);
    REQUIRE(tm_strmap_intern(&m, "ab\0", 3, &c, &added) == TM_OK);
    REQUIRE(tm_strmap_intern(&m, "", 0, &e, &added) == TM_OK);
    CHECK(a != b && c != e && added);
    CHECK_INT_EQ(tm_strmap_find(&m, "ab", 2), -1);
    CHECK_INT_EQ(tm_strmap_find(&m, "", 0), e);
    tm_strmap_release(&m);
}

TM_TEST(strmap_cap_and_allocation_failures)
{
    struct tm_strmap m;
    uint32_t id;
    int added;
    REQUIRE(tm_strmap_init(&m, 2) == TM_OK);
    CHECK_INT_EQ(tm_strmap_intern(&m, "aa", 2, &id, &added), TM_OK);
    CHECK_INT_EQ(tm_strmap_intern(&m, "bb", 2, &id, &added), TM_OK);
    CHECK_INT_EQ(tm_strmap_intern(&m, "cc", 2, &id, &added), TM_ETOOBIG);
    CHECK_INT_EQ(tm_strmap_intern(&m, "aa", 2, &id, &added), TM_OK); /* old keys still found */
    tm_strmap_release(&m);

    for (long n = 1; n < 200; n++) {
        tm_testalloc_fail_at(n);
        tm_status st = tm_strmap_init(&m, 1 << 20);
        int failed = st != TM_OK;
        char key[16];
        for (int i = 0; st == TM_OK && i < 3000; i++) {
            int len = snprintf(key, sizeof(key), "key%d", i);
            st = tm_strmap_intern(&m, key, (size_t)len, &id, &added);
            if (st != TM_OK) {
                /* the map stays usable after a failed insert */
                CHECK_INT_EQ(st, TM_ENOMEM);
                CHECK_INT_EQ(tm_strmap_find(&m, "key0", 4), i > 0 ? 0 : -1);
                CHECK_INT_EQ(m.n, i);
                failed = 1;
            }
        }
        if (!failed || st == TM_OK)
            tm_strmap_release(&m);
        else if (m.slots)
            tm_strmap_release(&m);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
    }
    tm_alloc_set_methods(NULL);
}

/* The padded hash and intern (8 readable bytes past the key, which the
 * vectorizer's ASCII path gives) agree with the plain ones: the same hash
 * and head for every length 0..40 and every position in a buffer whose
 * bytes past the key are not zero, and an intern through either finds the
 * other's key. */
TM_TEST(strmap_padded_hash_and_intern_agree_with_plain)
{
    char buf[160];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)('a' + (i * 7) % 26);
    struct tm_strmap m;
    REQUIRE(tm_strmap_init(&m, 1 << 10) == TM_OK);
    int checked = 0;
    for (size_t len = 0; len <= 40; len++) {
        for (size_t at = 0; at + len + 8 <= sizeof(buf); at += 5) {
            const char *s = buf + at;
            CHECK(tm_strmap_hash_padded(s, len) == tm_strmap_hash(s, len));
            CHECK(tm__strmap_head8_padded(s, len) == tm__strmap_head8(s, len));
            checked++;
        }
        /* a key interned plainly is found padded, and the other way round */
        uint32_t a, b;
        int added;
        const char *s = buf + len;
        REQUIRE(tm_strmap_intern_hashed(&m, s, len, tm_strmap_hash(s, len), &a, &added) == TM_OK);
        REQUIRE(tm_strmap_intern_padded(&m, s, len, tm_strmap_hash_padded(s, len), &b, &added) ==
                TM_OK);
        CHECK(a == b && !added);
        const char *other = buf + 2 * len + 1;
        REQUIRE(tm_strmap_intern_padded(&m, other, len, tm_strmap_hash_padded(other, len), &a,
                                        &added) == TM_OK);
        REQUIRE(tm_strmap_intern_hashed(&m, other, len, tm_strmap_hash(other, len), &b, &added) ==
                TM_OK);
        CHECK(a == b && !added);
    }
    CHECK(checked > 800);
    tm_strmap_release(&m);
}
