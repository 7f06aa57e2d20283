/* test_npz.c - api/npz.h: writing, reading back, numpy's own files, and
 * every kind of damage refused cleanly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/npz.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

static unsigned char *read_fixture(const char *name, size_t *len)
{
    FILE *f = fopen(tm_test_fixture(name), "rb");
    if (!f)
        return NULL;
    unsigned char *b = malloc(1 << 16);
    *len = fread(b, 1, 1 << 16, f);
    fclose(f);
    return b;
}

/* An archive of four arrays and a plain member, at compression level. */
static tm_status write_sample(int level, unsigned char **out, size_t *len, char *err)
{
    static const double a[6] = {0, 0.25, 0.5, 0.75, 1.0, 1.25};
    static const int64_t b[4] = {-3, 0, 7, (int64_t)1 << 40};
    static const float d = 1.5f;
    static const char json[] = "{\"format_version\": 1}";
    int64_t sa[2] = {2, 3}, sb[1] = {4}, sc[1] = {0};
    struct tm_npz_writer *w;
    tm_status st = tm_npz_writer_new(level, 0, &w, err);
    if (st)
        return st;
    st = tm_npz_writer_add(w, "a", TM_NPZ_F64, 2, sa, a, err);
    if (!st)
        st = tm_npz_writer_add(w, "b", TM_NPZ_I64, 1, sb, b, err);
    if (!st)
        st = tm_npz_writer_add(w, "c", TM_NPZ_U8, 1, sc, NULL, err);
    if (!st)
        st = tm_npz_writer_add(w, "d", TM_NPZ_F32, 0, NULL, &d, err);
    if (!st)
        st = tm_npz_writer_add_raw(w, "meta.json", json, sizeof(json) - 1, err);
    if (!st)
        st = tm_npz_writer_finish(w, out, len, err);
    tm_npz_writer_free(w);
    return st;
}

/* The sample's values, as write_sample and tests/fixtures/api/npz/make.py
 * make them. */
static void check_sample(struct tm_test_ctx *t, const struct tm_npz *z, int with_meta)
{
    char err[TM_ERR_SIZE];
    const struct tm_npz_member *m;
    int64_t sa[2] = {2, 3};
    REQUIRE(tm_npz_get(z, "a", TM_NPZ_F64, 2, sa, &m, err) == TM_OK);
    const double *a = m->data;
    for (int i = 0; i < 6; i++)
        CHECK(a[i] == i / 4.0);
    REQUIRE(tm_npz_get(z, "b", TM_NPZ_I64, 1, NULL, &m, err) == TM_OK);
    CHECK_INT_EQ(m->count, 4);
    CHECK_INT_EQ(((const int64_t *)m->data)[3], (int64_t)1 << 40);
    CHECK_INT_EQ(((const int64_t *)m->data)[0], -3);
    REQUIRE(tm_npz_get(z, "c", TM_NPZ_U8, 1, NULL, &m, err) == TM_OK);
    CHECK_INT_EQ(m->count, 0);
    CHECK(m->data == NULL);
    REQUIRE(tm_npz_get(z, "d", TM_NPZ_F32, 0, NULL, &m, err) == TM_OK);
    CHECK_INT_EQ(m->count, 1);
    CHECK(*(const float *)m->data == 1.5f);
    /* A wrong dtype or shape names both. */
    int64_t wrong[2] = {3, 2};
    CHECK(tm_npz_get(z, "a", TM_NPZ_F64, 2, wrong, &m, err) == TM_EPARSE);
    CHECK_STR_EQ(err, "npz: a: float64 of shape (2, 3), expected float64 of (3, 2)");
    CHECK(tm_npz_get(z, "b", TM_NPZ_F64, 1, NULL, &m, err) == TM_EPARSE);
    CHECK(tm_npz_get(z, "nope", TM_NPZ_F64, 1, NULL, &m, err) == TM_ENOTFOUND);
    CHECK_STR_EQ(err, "npz: no member nope");
    if (with_meta) {
        REQUIRE(tm_npz_get(z, "meta.json", TM_NPZ_RAW, 1, NULL, &m, err) == TM_OK);
        CHECK(m->count == 21 && !memcmp(m->data, "{\"format_version\": 1}", 21));
    }
}

TM_TEST(npz_round_trip)
{
    char err[TM_ERR_SIZE];
    for (int level = 0; level <= 9; level += 3) {
        unsigned char *b;
        size_t len;
        REQUIRE(write_sample(level, &b, &len, err) == TM_OK);
        struct tm_npz *z;
        tm_status st = tm_npz_read(b, len, 1 << 20, &z, err);
        if (st)
            fprintf(stderr, "level %d: %s\n", level, err);
        REQUIRE(st == TM_OK);
        CHECK_INT_EQ(tm_npz_count(z), 5);
        CHECK_STR_EQ(tm_npz_member_at(z, 0)->name, "a");
        check_sample(t, z, 1);
        tm_npz_free(z);
        /* The same inputs give the same bytes (fixed timestamps). */
        unsigned char *b2;
        size_t len2;
        REQUIRE(write_sample(level, &b2, &len2, err) == TM_OK);
        CHECK(len == len2 && !memcmp(b, b2, len));
        /* The members' sizes past the cap: refused before inflating. */
        CHECK(tm_npz_read(b, len, 200, &z, err) == TM_ETOOBIG);
        tm_free(b);
        tm_free(b2);
    }
}

TM_TEST(npz_reads_numpy_files)
{
    const char *names[] = {"api/npz/numpy_savez.npz", "api/npz/numpy_savez_compressed.npz"};
    for (int i = 0; i < 2; i++) {
        size_t len;
        unsigned char *b = read_fixture(names[i], &len);
        REQUIRE(b);
        char err[TM_ERR_SIZE];
        struct tm_npz *z;
        tm_status st = tm_npz_read(b, len, 1 << 20, &z, err);
        if (st)
            fprintf(stderr, "%s: %s\n", names[i], err);
        REQUIRE(st == TM_OK);
        CHECK_INT_EQ(tm_npz_count(z), 4);
        check_sample(t, z, 0);
        tm_npz_free(z);
        free(b);
    }
}

/* Every prefix, and every single-byte change, of an archive is read or
 * refused with a message; never a crash (the sanitizer builds watch). */
TM_TEST(npz_damage_refused)
{
    char err[TM_ERR_SIZE];
    for (int level = 0; level <= 6; level += 6) {
        unsigned char *b;
        size_t len;
        REQUIRE(write_sample(level, &b, &len, err) == TM_OK);
        struct tm_npz *z;
        for (size_t n = 0; n < len; n++) {
            err[0] = '\0';
            CHECK(tm_npz_read(b, n, 1 << 20, &z, err) != TM_OK);
            CHECK(err[0] != '\0');
        }
        int accepted = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char keep = b[i];
            b[i] ^= 0x5a;
            err[0] = '\0';
            tm_status st = tm_npz_read(b, len, 1 << 20, &z, err);
            if (st == TM_OK) {
                accepted++;
                tm_npz_free(z);
            } else {
                CHECK(err[0] != '\0');
                CHECK(st == TM_EPARSE || st == TM_ETOOBIG);
            }
            b[i] = keep;
        }
        /* The CRCs catch changed data; what passes is header fields the
         * reader does not use (version made by, times, attributes). */
        if (accepted >= (int)len / 5)
            fprintf(stderr, "level %d: %d of %zu changes accepted\n", level, accepted, len);
        CHECK(accepted < (int)len / 5);
        tm_free(b);
    }
}

/* A member's declared size its data cannot give (stored data is its own
 * size; deflate expands at most 1032:1) is refused before it sizes an
 * allocation: make fuzz found a 2.9 GB malloc from a 100-byte input. */
TM_TEST(npz_impossible_sizes_refused)
{
    char err[TM_ERR_SIZE];
    for (int level = 0; level <= 6; level += 6) {
        unsigned char *b;
        size_t len;
        REQUIRE(write_sample(level, &b, &len, err) == TM_OK);
        /* Every local (PK\3\4, size at +22) and central (PK\1\2, at +24)
         * header's uncompressed size: for level 6, 2000 x the compressed. */
        for (size_t i = 0; i + 46 <= len; i++) {
            size_t at = 0, csize_at = 0;
            if (!memcmp(b + i, "PK\3\4", 4)) {
                at = i + 22;
                csize_at = i + 18;
            } else if (!memcmp(b + i, "PK\1\2", 4)) {
                at = i + 24;
                csize_at = i + 20;
            } else {
                continue;
            }
            uint32_t csize = (uint32_t)b[csize_at] | (uint32_t)b[csize_at + 1] << 8 |
                             (uint32_t)b[csize_at + 2] << 16 | (uint32_t)b[csize_at + 3] << 24;
            uint32_t usize = level ? csize * 2000 + 4096 : csize + 100;
            for (int k = 0; k < 4; k++)
                b[at + (size_t)k] = (unsigned char)(usize >> (8 * k));
        }
        struct tm_npz *z = NULL;
        err[0] = '\0';
        CHECK_INT_EQ(tm_npz_read(b, len, (size_t)1 << 40, &z, err), TM_EPARSE);
        /* Stored: the sizes disagree, refused as before; deflate: this. */
        CHECK(strstr(err, level ? "cannot come from" : "stored with two sizes") != NULL);
        tm_free(b);
    }
}

TM_TEST(npz_bad_headers)
{
    /* A hand-made stored .npy with a given header dict. */
    const char *cases[][2] = {
        {"{'descr': '<f8', 'fortran_order': True, 'shape': (1,), }", "fortran_order"},
        {"{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", "dtype '>f8'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", "data bytes"},
        {"{'descr': '<f8', 'fortran_order': False, }", "lacks shape"},
        {"{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", "malformed"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", "unknown header"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }",
         "malformed"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
         "data bytes"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", NULL},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        unsigned char npy[256];
        size_t hl = strlen(cases[c][0]);
        size_t total = (10 + hl + 1 + 63) / 64 * 64;
        memcpy(npy, "\x93NUMPY\x01\x00", 8);
        npy[8] = (unsigned char)((total - 10) & 0xff);
        npy[9] = (unsigned char)((total - 10) >> 8);
        memcpy(npy + 10, cases[c][0], hl);
        memset(npy + 10 + hl, ' ', total - 10 - hl - 1);
        npy[total - 1] = '\n';
        double one = 1.0;
        memcpy(npy + total, &one, 8);
        /* Wrapped as a plain member "x.np" + renamed: write it raw under a
         * name, then patch ".np_" to ".npy" in both headers. */
        struct tm_npz_writer *w;
        char err[TM_ERR_SIZE];
        REQUIRE(tm_npz_writer_new(0, 0, &w, err) == TM_OK);
        REQUIRE(tm_npz_writer_add_raw(w, "x.np_", npy, total + 8, err) == TM_OK);
        unsigned char *b;
        size_t len;
        REQUIRE(tm_npz_writer_finish(w, &b, &len, err) == TM_OK);
        tm_npz_writer_free(w);
        for (size_t i = 0; i + 5 <= len; i++)
            if (!memcmp(b + i, "x.np_", 5))
                b[i + 4] = 'y';
        struct tm_npz *z;
        tm_status st = tm_npz_read(b, len, 1 << 20, &z, err);
        if (cases[c][1]) {
            CHECK(st == TM_EPARSE);
            if (!strstr(err, cases[c][1]))
                fprintf(stderr, "case %zu: %s\n", c, err);
            CHECK(strstr(err, cases[c][1]) != NULL);
        } else {
            /* The CRC was of the same bytes: the control case reads. */
            if (st)
                fprintf(stderr, "control: %s\n", err);
            CHECK(st == TM_OK);
            if (!st)
                tm_npz_free(z);
        }
        tm_free(b);
    }
}

TM_TEST(npz_writer_refusals)
{
    char err[TM_ERR_SIZE];
    struct tm_npz_writer *w;
    int64_t s1[1] = {2};
    double two[2] = {1, 2};
    CHECK(tm_npz_writer_new(10, 0, &w, err) == TM_EINVAL);
    REQUIRE(tm_npz_writer_new(1, 0, &w, err) == TM_OK);
    CHECK(tm_npz_writer_add(w, "bad name", TM_NPZ_F64, 1, s1, two, err) == TM_EINVAL);
    CHECK(tm_npz_writer_add(w, "x", TM_NPZ_RAW, 1, s1, two, err) == TM_EINVAL);
    CHECK(tm_npz_writer_add(w, "x", TM_NPZ_F64, 1, s1, two, err) == TM_OK);
    CHECK(tm_npz_writer_add(w, "x", TM_NPZ_F64, 1, s1, two, err) == TM_EINVAL);
    CHECK(strstr(err, "twice") != NULL);
    tm_npz_writer_free(w);
    /* The cap. */
    REQUIRE(tm_npz_writer_new(0, 100, &w, err) == TM_OK);
    CHECK(tm_npz_writer_add(w, "x", TM_NPZ_F64, 1, s1, two, err) == TM_ETOOBIG);
    tm_npz_writer_free(w);
}

TM_TEST(npz_allocation_failures)
{
    char err[TM_ERR_SIZE];
    unsigned char *b;
    size_t len;
    REQUIRE(write_sample(6, &b, &len, err) == TM_OK);
    for (long n = 1; n < 200; n++) {
        tm_testalloc_fail_at(n);
        struct tm_npz *z = NULL;
        tm_status st = tm_npz_read(b, len, 1 << 20, &z, err);
        unsigned char *b2 = NULL;
        size_t len2;
        tm_status st2 = write_sample(6, &b2, &len2, err);
        long calls = tm_testalloc_calls();
        tm_npz_free(z);
        tm_free(b2);
        tm_testalloc_reset();
        CHECK(st == TM_OK || st == TM_ENOMEM);
        CHECK(st2 == TM_OK || st2 == TM_ENOMEM);
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (n > calls)
            break;
    }
    tm_free(b);
}
