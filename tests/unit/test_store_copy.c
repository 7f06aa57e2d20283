/* test_store_copy.c - `topicd store copy` (server/store_copy.h): a SQLite
 * store filled through the store API is copied into PostgreSQL, and every
 * record, result byte and document-topics page is compared through the
 * same API on both sides; copies run again are no-ops or finish what is
 * missing, and a target holding anything else is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "harness.h"
#include "server/keys.h"
#include "server/store.h"
#include "server/store_copy.h"
#include "tmpstore.h"

static struct tm_job_record job(const char *id, const char *corpus_id, double t)
{
    struct tm_job_record j;
    memset(&j, 0, sizeof(j));
    snprintf(j.id, sizeof(j.id), "%s", id);
    snprintf(j.corpus_id, sizeof(j.corpus_id), "%s", corpus_id);
    snprintf(j.method, sizeof(j.method), "nmf");
    j.state = TM_JOB_QUEUED;
    j.created_at = t + 0.125;
    return j;
}

/* In fill: a store call that must succeed, or the fill fails. */
#define OK(call)                                                                                   \
    do {                                                                                           \
        if ((call) != TM_OK) {                                                                     \
            tm_test_fail(t, __FILE__, __LINE__, "%s: %s", #call, err);                             \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

static int fill(struct tm_test_ctx *t, struct tm_store *s)
{
    char err[TM_ERR_SIZE];
    struct tm_store_doc docs[3] = {
        {"first text", 10, "d-1", 3}, {"", 0, NULL, 0}, {"caf\xc3\xa9 \x01 bytes", 13, "d-3", 3}};
    static const char *const ids[] = {"c_a", "c_b", "c_up"};
    for (int i = 0; i < 3; i++) {
        struct tm_corpus_record c;
        memset(&c, 0, sizeof(c));
        snprintf(c.id, sizeof(c.id), "%s", ids[i]);
        c.created_at = 1700000000.25 + i;
        snprintf(c.tenant, sizeof(c.tenant), "%s", i == 1 ? "acme" : "");
        OK(s->m->corpus_create(s->ctx, &c, err));
        OK(s->m->corpus_append(s->ctx, ids[i], docs, 2, err));
        OK(s->m->corpus_append(s->ctx, ids[i], docs + 2, 1, err));
        if (i < 2)
            OK(s->m->corpus_commit(s->ctx, ids[i], err));
    }
    /* An append adopted into c_b. */
    struct tm_corpus_record st;
    memset(&st, 0, sizeof(st));
    snprintf(st.id, sizeof(st.id), "c_stage");
    st.hidden = 1;
    OK(s->m->corpus_create(s->ctx, &st, err));
    OK(s->m->corpus_append(s->ctx, "c_stage", docs, 1, err));
    OK(s->m->corpus_adopt(s->ctx, "c_b", "c_stage", err));

    /* j0 deleted (a gap in the seqs); j1 succeeded with weights and ids;
     * j2 failed; j3 queued; j4 running; j5 inline, a result without
     * weights; j6 cancelled. */
    struct tm_job_record j0 = job("j_0", "c_a", 1), j1 = job("j_1", "c_a", 2),
                         j2 = job("j_2", "c_b", 3), j3 = job("j_3", "c_b", 4),
                         j4 = job("j_4", "c_a", 5), j5 = job("j_5", "", 6),
                         j6 = job("j_6", "c_a", 7);
    snprintf(j2.tenant, sizeof(j2.tenant), "acme");
    OK(s->m->job_insert(s->ctx, &j0, "{}", 2, "key0", "id:x", err));
    OK(s->m->job_insert(s->ctx, &j1, "{\"j\":1}", 7, "key1", "id:alice", err));
    OK(s->m->job_insert(s->ctx, &j2, "{\"j\":2}", 7, NULL, "id:bob", err));
    OK(s->m->job_insert(s->ctx, &j3, "{\"j\":3}", 7, "key3", "ip:10.1.2.3", err));
    OK(s->m->job_insert(s->ctx, &j4, "{\"j\":4}", 7, NULL, "id:alice", err));
    OK(s->m->job_insert(s->ctx, &j5, "{\"documents\":[\"x\"]}", 19, NULL, "", err));
    OK(s->m->job_insert(s->ctx, &j6, "{}", 2, NULL, "id:x", err));
    j0.state = TM_JOB_FAILED;
    OK(s->m->job_finish(s->ctx, NULL, &j0, NULL, err));
    OK(s->m->job_delete(s->ctx, "j_0", err));
    enum { N = 600, K = 3 };
    static double w[N * K];
    char *dids[N], idbuf[N][12];
    for (int i = 0; i < N * K; i++)
        w[i] = i * 0.25 - 7;
    for (int i = 0; i < N; i++) {
        snprintf(idbuf[i], sizeof(idbuf[i]), "doc-%d", i);
        dids[i] = i % 4 ? idbuf[i] : NULL;
    }
    j1.state = TM_JOB_SUCCEEDED;
    j1.attempts = 1;
    j1.progress = 1;
    snprintf(j1.stage, sizeof(j1.stage), "nmf");
    j1.started_at = 1700000100.5;
    j1.finished_at = 1700000101.75;
    static const unsigned char model[5] = {'P', 'K', 0, 0xfe, 1};
    struct tm_store_result r1 = {"{\"topics\":[1,2,3]}", 18, N, K, w, dids, model, sizeof(model)};
    OK(s->m->job_finish(s->ctx, NULL, &j1, &r1, err));
    j2.state = TM_JOB_FAILED;
    j2.attempts = 3;
    snprintf(j2.error_code, sizeof(j2.error_code), "worker_crashed");
    snprintf(j2.error_message, sizeof(j2.error_message), "gave up \xc3\xa9");
    j2.finished_at = 1700000102.5;
    OK(s->m->job_finish(s->ctx, NULL, &j2, NULL, err));
    j4.state = TM_JOB_RUNNING;
    j4.attempts = 2;
    j4.progress = 0.5;
    j4.started_at = 1700000103.5;
    snprintf(j4.stage, sizeof(j4.stage), "tokenize");
    OK(s->m->job_update(s->ctx, NULL, &j4, err));
    j5.state = TM_JOB_SUCCEEDED;
    j5.finished_at = 1700000104.5;
    struct tm_store_result r5 = {"{\"inline\":true}", 15, 0, 0, NULL, NULL, NULL, 0};
    OK(s->m->job_finish(s->ctx, NULL, &j5, &r5, err));
    j6.state = TM_JOB_CANCELLED;
    j6.finished_at = 1700000105.5;
    OK(s->m->job_update(s->ctx, NULL, &j6, err));
    /* API keys: one in use, one revoked. */
    struct tm_key_record k1, k2;
    char key[TM_KEY_SIZE];
    OK(tm_key_generate("acme", 0, 1700000200.5, key, &k1, err));
    OK(tm_key_generate("ops", 1, 1700000201.5, key, &k2, err));
    OK(s->m->key_create(s->ctx, &k1, err));
    OK(s->m->key_create(s->ctx, &k2, err));
    OK(s->m->key_touch(s->ctx, k1.id, 1700000202.5, err));
    OK(s->m->key_revoke(s->ctx, k2.id, 1700000203.5, err));
    return 0;
}

static int same_corpus(const struct tm_corpus_record *a, const struct tm_corpus_record *b)
{
    return !strcmp(a->id, b->id) && a->seq == b->seq && a->n_documents == b->n_documents &&
           a->bytes == b->bytes && a->created_at == b->created_at && a->hidden == b->hidden &&
           !strcmp(a->tenant, b->tenant);
}

static int same_job(const struct tm_job_record *a, const struct tm_job_record *b)
{
    return !strcmp(a->id, b->id) && a->seq == b->seq && !strcmp(a->corpus_id, b->corpus_id) &&
           a->state == b->state && !strcmp(a->stage, b->stage) && a->progress == b->progress &&
           a->attempts == b->attempts && a->created_at == b->created_at &&
           a->started_at == b->started_at && a->finished_at == b->finished_at &&
           !strcmp(a->method, b->method) && !strcmp(a->error_code, b->error_code) &&
           !strcmp(a->error_message, b->error_message) && !strcmp(a->tenant, b->tenant);
}

/* Both stores' answers to one blob method (0: spec, 1: result, 2: model),
 * compared. */
static void same_blob(struct tm_test_ctx *t, struct tm_store *a, struct tm_store *b, const char *id,
                      int which)
{
    char err[TM_ERR_SIZE], *x = NULL, *y = NULL;
    size_t xl = 0, yl = 0;
    tm_status sa = which == 2   ? a->m->job_model(a->ctx, id, &x, &xl, err)
                   : which == 1 ? a->m->job_result(a->ctx, id, &x, &xl, err)
                                : a->m->job_spec(a->ctx, id, &x, &xl, err);
    tm_status sb = which == 2   ? b->m->job_model(b->ctx, id, &y, &yl, err)
                   : which == 1 ? b->m->job_result(b->ctx, id, &y, &yl, err)
                                : b->m->job_spec(b->ctx, id, &y, &yl, err);
    if (which == 2 && !strcmp(id, "j_1"))
        CHECK(sa == TM_OK && xl == 5);
    CHECK_INT_EQ(sa, sb);
    CHECK(xl == yl && (!xl || !memcmp(x, y, xl)));
    tm_free(x);
    tm_free(y);
}

/* The page [offset, offset + limit) of a job's document topics, compared. */
static void same_page(struct tm_test_ctx *t, struct tm_store *a, struct tm_store *b, const char *id,
                      int64_t offset, int64_t limit)
{
    char err[TM_ERR_SIZE];
    double *wa = NULL, *wb = NULL;
    char **ia = NULL, **ib = NULL;
    int64_t na, nb, ka, kb, ta, tb;
    tm_status sa = a->m->job_doc_topics(a->ctx, id, offset, limit, &wa, &ia, &na, &ka, &ta, err);
    tm_status sb = b->m->job_doc_topics(b->ctx, id, offset, limit, &wb, &ib, &nb, &kb, &tb, err);
    CHECK_INT_EQ(sa, sb);
    if (!sa && !sb) {
        CHECK(na == nb && ka == kb && ta == tb);
        CHECK(!na || !memcmp(wa, wb, (size_t)(na * ka) * sizeof(double)));
        CHECK(!ia == !ib);
        int same = 1;
        for (int64_t i = 0; ia && ib && i < na; i++)
            same &= (!ia[i] && !ib[i]) || (ia[i] && ib[i] && !strcmp(ia[i], ib[i]));
        CHECK(same);
    }
    for (int64_t i = 0; ia && i < na; i++)
        tm_free(ia[i]);
    for (int64_t i = 0; ib && i < nb; i++)
        tm_free(ib[i]);
    tm_free(ia);
    tm_free(ib);
    tm_free(wa);
    tm_free(wb);
}

static int collect_clients(void *ctx, const struct tm_job_record *j, const char *client)
{
    char *buf = ctx;
    size_t n = strlen(buf);
    snprintf(buf + n, 512 - n, "%s=%s;", j->id, client);
    return 0;
}

/* Everything the store API says of src and dst is the same, but j_4, which
 * was running in src and is queued in dst. */
static void compare(struct tm_test_ctx *t, struct tm_store *src, struct tm_store *dst)
{
    char err[TM_ERR_SIZE];
    struct tm_corpus_record ca[16], cb[16];
    int na = 0, nb = 0;
    CHECK_INT_EQ(src->m->corpus_list(src->ctx, NULL, 0, 16, ca, &na, err), TM_OK);
    CHECK_INT_EQ(dst->m->corpus_list(dst->ctx, NULL, 0, 16, cb, &nb, err), TM_OK);
    CHECK_INT_EQ(na, 2);
    CHECK_INT_EQ(nb, na);
    for (int i = 0; i < na && i < nb; i++) {
        CHECK(same_corpus(&ca[i], &cb[i]));
        struct tm_store_docs da, db;
        CHECK_INT_EQ(src->m->corpus_load(src->ctx, ca[i].id, &da, err), TM_OK);
        CHECK_INT_EQ(dst->m->corpus_load(dst->ctx, ca[i].id, &db, err), TM_OK);
        CHECK(da.n == db.n && da.offsets[da.n] == db.offsets[db.n]);
        CHECK(!memcmp(da.offsets, db.offsets, (size_t)(da.n + 1) * sizeof(int64_t)));
        CHECK(!memcmp(da.pool, db.pool, (size_t)da.offsets[da.n]));
        for (int64_t d = 0; d < da.n; d++)
            CHECK((!da.ids[d] && !db.ids[d]) ||
                  (da.ids[d] && db.ids[d] && !strcmp(da.ids[d], db.ids[d])));
        tm_store_docs_release(&da);
        tm_store_docs_release(&db);
    }
    struct tm_job_record ja[16], jb[16];
    CHECK_INT_EQ(src->m->job_list(src->ctx, NULL, -1, 0, 16, ja, &na, err), TM_OK);
    CHECK_INT_EQ(dst->m->job_list(dst->ctx, NULL, -1, 0, 16, jb, &nb, err), TM_OK);
    CHECK_INT_EQ(na, 6);
    CHECK_INT_EQ(nb, na);
    for (int i = 0; i < na && i < nb; i++) {
        struct tm_job_record want = ja[i];
        if (!strcmp(want.id, "j_4")) {
            CHECK(want.state == TM_JOB_RUNNING);
            want.state = TM_JOB_QUEUED;
            want.started_at = 0;
            want.stage[0] = 0;
            want.progress = 0;
        }
        CHECK(same_job(&want, &jb[i]));
        if (!same_job(&want, &jb[i]))
            fprintf(stderr, "job %s differs\n", want.id);
        same_blob(t, src, dst, want.id, 0);
        same_blob(t, src, dst, want.id, 1);
        same_blob(t, src, dst, want.id, 2);
        same_page(t, src, dst, want.id, 0, 1000);
        same_page(t, src, dst, want.id, 250, 300);
        same_page(t, src, dst, want.id, 599, 10);
    }
    static const char *const keys[] = {"key1", "key3", "key0"};
    for (int i = 0; i < 3; i++) {
        struct tm_job_record a, b;
        char *sa = NULL, *sb = NULL;
        size_t la, lb;
        tm_status xa = src->m->job_by_idem(src->ctx, keys[i], &a, &sa, &la, err);
        tm_status xb = dst->m->job_by_idem(dst->ctx, keys[i], &b, &sb, &lb, err);
        CHECK_INT_EQ(xa, xb);
        CHECK(xa || (!strcmp(a.id, b.id) && la == lb && !memcmp(sa, sb, la)));
        tm_free(sa);
        tm_free(sb);
    }
    char qa[512] = "", qb[512] = "";
    CHECK_INT_EQ(dst->m->job_scan(dst->ctx, TM_JOB_QUEUED, collect_clients, qb, err), TM_OK);
    CHECK_STR_EQ(qb, "j_3=ip:10.1.2.3;j_4=id:alice;");
    CHECK_INT_EQ(src->m->job_scan(src->ctx, TM_JOB_FAILED, collect_clients, qa, err), TM_OK);
    qb[0] = 0;
    CHECK_INT_EQ(dst->m->job_scan(dst->ctx, TM_JOB_FAILED, collect_clients, qb, err), TM_OK);
    CHECK_STR_EQ(qa, qb);
    struct tm_key_record ka[4], kb[4];
    CHECK_INT_EQ(src->m->key_list(src->ctx, ka, 4, &na, err), TM_OK);
    CHECK_INT_EQ(dst->m->key_list(dst->ctx, kb, 4, &nb, err), TM_OK);
    CHECK_INT_EQ(na, 2);
    CHECK_INT_EQ(nb, na);
    for (int i = 0; i < na && i < nb; i++)
        CHECK(!strcmp(ka[i].id, kb[i].id) && !strcmp(ka[i].tenant, kb[i].tenant) &&
              ka[i].admin == kb[i].admin && !memcmp(ka[i].hash, kb[i].hash, TM_KEY_HASH_SIZE) &&
              ka[i].created_at == kb[i].created_at && ka[i].revoked_at == kb[i].revoked_at &&
              ka[i].last_used_at == kb[i].last_used_at);
    CHECK_STR_EQ(cb[1].tenant, "acme");
}

TM_TEST(store_copy_sqlite_to_pg)
{
    if (tm_tmpstore_pg_skip()) {
        tm_test_skip(t, tm_tmpstore_pg_skip());
        return;
    }
    char err[TM_ERR_SIZE], schema[40], conninfo[1024];
    struct tm_tmpstore src;
    REQUIRE(tm_tmpstore_open_driver(&src, "copy", TM_STORE_SQLITE, 0) == 0);
    if (fill(t, &src.store)) {
        tm_tmpstore_close(&src);
        return;
    }
    REQUIRE(tm_test_pg_schema_new(schema, conninfo, sizeof(conninfo)) == 0);
    struct tm_store_copy_stats cs;
    /* The source is in use: refused, nothing written. */
    CHECK_INT_EQ(tm_store_copy(src.dir, conninfo, &cs, err), TM_EBUSY);
    CHECK(strstr(err, "in use by another topicd") != NULL);
    tm_store_close(&src.store);
    CHECK_INT_EQ(tm_store_copy(src.dir, "./not-a-url", &cs, err), TM_EINVAL);

    CHECK_INT_EQ(tm_store_copy(src.dir, conninfo, &cs, err), TM_OK);
    CHECK(cs.corpora == 2 && cs.documents == 7 && cs.jobs == 6 && cs.requeued == 1);
    CHECK(cs.corpora_present == 0 && cs.jobs_present == 0);
    CHECK(cs.keys == 2 && cs.keys_present == 0);
    /* Again: everything is there already. */
    CHECK_INT_EQ(tm_store_copy(src.dir, conninfo, &cs, err), TM_OK);
    CHECK(cs.corpora == 0 && cs.jobs == 0 && cs.corpora_present == 2 && cs.jobs_present == 6);
    CHECK(cs.keys == 0 && cs.keys_present == 2);

    struct tm_store dst;
    REQUIRE(tm_store_open_pg(&dst, conninfo, NULL, err) == TM_OK);
    REQUIRE(tm_store_open_sqlite(&src.store, src.dir, err) == TM_OK);
    compare(t, &src.store, &dst);

    /* What an interrupted copy leaves (a job and its chunks missing) is
     * finished by a second run. */
    CHECK_INT_EQ(dst.m->job_delete(dst.ctx, "j_1", err), TM_OK);
    tm_store_close(&dst);
    tm_store_close(&src.store);
    CHECK_INT_EQ(tm_store_copy(src.dir, conninfo, &cs, err), TM_OK);
    CHECK(cs.jobs == 1 && cs.jobs_present == 5 && cs.corpora_present == 2);
    REQUIRE(tm_store_open_pg(&dst, conninfo, NULL, err) == TM_OK);
    REQUIRE(tm_store_open_sqlite(&src.store, src.dir, err) == TM_OK);
    compare(t, &src.store, &dst);

    /* New records go after the copied ones: the seqs moved past them. */
    struct tm_job_record n = job("j_new", "c_a", 9), last;
    CHECK_INT_EQ(src.store.m->job_get(src.store.ctx, "j_6", &last, err), TM_OK);
    CHECK_INT_EQ(dst.m->job_insert(dst.ctx, &n, "{}", 2, NULL, NULL, err), TM_OK);
    CHECK(n.seq > last.seq);
    struct tm_corpus_record nc;
    memset(&nc, 0, sizeof(nc));
    snprintf(nc.id, sizeof(nc.id), "c_new");
    CHECK_INT_EQ(dst.m->corpus_create(dst.ctx, &nc, err), TM_OK);
    CHECK_INT_EQ(dst.m->corpus_commit(dst.ctx, "c_new", err), TM_OK);
    struct tm_corpus_record cl[8];
    int ncl = 0;
    CHECK_INT_EQ(dst.m->corpus_list(dst.ctx, NULL, 0, 8, cl, &ncl, err), TM_OK);
    CHECK(ncl == 3 && !strcmp(cl[2].id, "c_new") && cl[2].seq > cl[1].seq);
    /* A job the source never had: the target is someone else's now. */
    CHECK_INT_EQ(dst.m->job_delete(dst.ctx, "j_2", err), TM_OK);
    tm_store_close(&dst);
    tm_store_close(&src.store);
    CHECK_INT_EQ(tm_store_copy(src.dir, conninfo, &cs, err), TM_EBUSY);
    CHECK(strstr(err, "'c_new'") && strstr(err, "empty store"));
    /* ...and nothing was written: j_2 is still missing. */
    REQUIRE(tm_store_open_pg(&dst, conninfo, NULL, err) == TM_OK);
    struct tm_job_record got;
    CHECK_INT_EQ(dst.m->job_get(dst.ctx, "j_2", &got, err), TM_ENOTFOUND);
    /* A record that differs is refused too. */
    CHECK_INT_EQ(dst.m->corpus_delete(dst.ctx, "c_new", err), TM_OK);
    CHECK_INT_EQ(dst.m->job_delete(dst.ctx, "j_new", err), TM_EBUSY); /* queued */
    n.state = TM_JOB_CANCELLED;
    CHECK_INT_EQ(dst.m->job_update(dst.ctx, NULL, &n, err), TM_OK);
    CHECK_INT_EQ(dst.m->job_delete(dst.ctx, "j_new", err), TM_OK);
    struct tm_job_record j3;
    CHECK_INT_EQ(dst.m->job_get(dst.ctx, "j_3", &j3, err), TM_OK);
    j3.attempts = 5;
    CHECK_INT_EQ(dst.m->job_update(dst.ctx, NULL, &j3, err), TM_OK);
    tm_store_close(&dst);
    CHECK_INT_EQ(tm_store_copy(src.dir, conninfo, &cs, err), TM_EBUSY);
    CHECK(strstr(err, "'j_3'") && strstr(err, "differs"));

    tm_test_pg_schema_drop(schema);
    tm_tmpstore_close(&src);
}
