/* test_store_quota.c - the per-tenant quotas of server/store.h (struct
 * tm_store_quotas): stored bytes counted and refused, the running cap that
 * claims honour, the use /metrics reads, and a store of the release before
 * quotas (schema version 2) counted at migration; each on SQLite and on
 * PostgreSQL (TM_STORE_TEST). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "harness.h"
#include "server/store.h"
#include "tmpstore.h"

/* The tenants' counts minus what the store holds, recounted from its rows
 * (committed corpora's text, jobs' specs and results, weights and ids): 0
 * whenever the counts are right. The SQL is the same on both drivers. */
static long long count_drift(struct tm_tmpstore *ts)
{
    return tm_tmpstore_sql_int(
        ts, "SELECT (SELECT coalesce(sum(stored_bytes), 0) FROM tenant_usage)"
            " - (SELECT coalesce(sum(bytes), 0) FROM corpora WHERE ready)"
            " - (SELECT coalesce(sum(length(spec) + coalesce(length(result), 0)), 0) FROM jobs)"
            " - (SELECT coalesce(sum(length(weights) + coalesce(length(ids), 0)), 0)"
            " FROM doc_topics)"
            " - (SELECT coalesce(sum(length(model)), 0) FROM job_models)");
}

static int64_t stored(struct tm_store *s, const char *tenant)
{
    char err[TM_ERR_SIZE];
    struct tm_store_use u;
    if (s->m->tenant_use(s->ctx, tenant, &u, err))
        return -1;
    return u.stored_bytes;
}

/* Creates corpus id of tenant and appends one document of len bytes:
 * corpus_append's status. */
static tm_status upload(struct tm_store *s, const char *id, const char *tenant, size_t len)
{
    char err[TM_ERR_SIZE], text[256];
    struct tm_corpus_record c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "%s", id);
    snprintf(c.tenant, sizeof(c.tenant), "%s", tenant);
    c.created_at = tm_clock_unix();
    memset(text, 'x', sizeof(text));
    struct tm_store_doc d = {text, len, NULL, 0};
    tm_status st = s->m->corpus_create(s->ctx, &c, err);
    return st ? st : s->m->corpus_append(s->ctx, id, &d, 1, err);
}

static struct tm_job_record job(const char *id, const char *tenant)
{
    struct tm_job_record j;
    memset(&j, 0, sizeof(j));
    snprintf(j.id, sizeof(j.id), "%s", id);
    snprintf(j.corpus_id, sizeof(j.corpus_id), "c_1");
    snprintf(j.method, sizeof(j.method), "nmf");
    snprintf(j.tenant, sizeof(j.tenant), "%s", tenant);
    j.state = TM_JOB_QUEUED;
    j.created_at = tm_clock_unix();
    return j;
}

/* Submits a job of tenant (client "t:tenant") with a spec of len bytes. */
static tm_status submit(struct tm_store *s, const char *id, const char *tenant, size_t len,
                        enum tm_store_full *full, char *err)
{
    char spec[256], client[TM_CLIENT_SIZE];
    memset(spec, ' ', sizeof(spec));
    snprintf(client, sizeof(client), "t:%s", tenant);
    struct tm_store_caps caps = {100, 100};
    struct tm_job_record j = job(id, tenant);
    return s->m->job_submit(s->ctx, &j, spec, len, NULL, client, &caps, full, err);
}

/* Stored bytes: what each write counts, what the quota refuses and for
 * whom, and that deletes give the bytes back. */
TM_STORE_TEST(store_quota_stored_bytes)
{
    struct tm_store *s = &ts->store;
    char err[TM_ERR_SIZE];
    struct tm_store_quotas q = {100, 0};
    s->m->set_quotas(s->ctx, &q);
    CHECK_INT_EQ(stored(s, "a"), 0);

    /* A corpus counts once committed; an upload in progress does not. */
    CHECK_INT_EQ(upload(s, "c_a1", "a", 60), TM_OK);
    CHECK_INT_EQ(stored(s, "a"), 0);
    CHECK_INT_EQ(s->m->corpus_commit(s->ctx, "c_a1", err), TM_OK);
    CHECK_INT_EQ(stored(s, "a"), 60);
    CHECK_INT_EQ(s->m->corpus_commit(s->ctx, "c_a1", err), TM_OK); /* counted once */
    CHECK_INT_EQ(stored(s, "a"), 60);

    /* 60 + 50 > 100: the batch is refused at once, naming the quota. */
    CHECK_INT_EQ(upload(s, "c_a2", "a", 50), TM_ETOOBIG);
    /* Two uploads that each fit but not together: the second commit is
     * refused, and the corpus it named stays uncommitted. */
    CHECK_INT_EQ(upload(s, "c_a3", "a", 30), TM_OK);
    CHECK_INT_EQ(upload(s, "c_a4", "a", 30), TM_OK);
    CHECK_INT_EQ(s->m->corpus_commit(s->ctx, "c_a3", err), TM_OK);
    CHECK_INT_EQ(s->m->corpus_commit(s->ctx, "c_a4", err), TM_ETOOBIG);
    CHECK(strstr(err, "tenant 'a' stores 90 bytes") && strstr(err, "quota of 100"));
    struct tm_corpus_record c;
    CHECK_INT_EQ(s->m->corpus_get(s->ctx, "c_a4", &c, err), TM_ENOTFOUND);
    CHECK_INT_EQ(s->m->corpus_delete(s->ctx, "c_a4", err), TM_OK);
    CHECK_INT_EQ(stored(s, "a"), 90);

    /* Another tenant is counted apart. */
    CHECK_INT_EQ(upload(s, "c_b1", "b", 80), TM_OK);
    CHECK_INT_EQ(s->m->corpus_commit(s->ctx, "c_b1", err), TM_OK);
    CHECK_INT_EQ(stored(s, "b"), 80);

    /* A job's spec counts: 90 + 20 is refused, 90 + 10 fits. */
    enum tm_store_full full;
    CHECK_INT_EQ(submit(s, "j_a1", "a", 20, &full, err), TM_EBUSY);
    CHECK_INT_EQ(full, TM_STORE_STORED_FULL);
    CHECK(strstr(err, "stored-bytes quota"));
    CHECK_INT_EQ(submit(s, "j_a1", "a", 10, &full, err), TM_OK);
    CHECK_INT_EQ(full, TM_STORE_NOT_FULL);
    CHECK_INT_EQ(stored(s, "a"), 100);

    /* Its result is kept, over the quota: a is over until it deletes. */
    struct tm_store_claimed cl;
    CHECK_INT_EQ(s->m->job_claim(s->ctx, "r_1", tm_clock_unix(), 30, &cl, err), TM_OK);
    struct tm_job_claim tok;
    memset(&tok, 0, sizeof(tok));
    snprintf(tok.id, sizeof(tok.id), "%s", cl.job.id);
    tok.attempt = cl.job.attempts;
    snprintf(tok.owner, sizeof(tok.owner), "r_1");
    struct tm_job_record done = cl.job;
    done.state = TM_JOB_SUCCEEDED;
    done.finished_at = tm_clock_unix();
    double w[6] = {1, 2, 3, 4, 5, 6};
    static const unsigned char model[11] = "model bytes";
    struct tm_store_result res = {"{\"r\":1}", 7, 3, 2, w, NULL, model, sizeof(model)};
    CHECK_INT_EQ(s->m->job_finish(s->ctx, &tok, &done, &res, err), TM_OK);
    /* The model counts too. */
    CHECK_INT_EQ(stored(s, "a"), 100 + 7 + 6 * 8 + 11);
    CHECK_INT_EQ(count_drift(ts), 0);
    CHECK_INT_EQ(submit(s, "j_a2", "a", 1, &full, err), TM_EBUSY);
    CHECK_INT_EQ(full, TM_STORE_STORED_FULL);

    /* Deleting gives the bytes back. */
    CHECK_INT_EQ(s->m->job_delete(s->ctx, "j_a1", err), TM_OK);
    CHECK_INT_EQ(stored(s, "a"), 90);
    CHECK_INT_EQ(s->m->corpus_delete(s->ctx, "c_a1", err), TM_OK);
    CHECK_INT_EQ(stored(s, "a"), 30);
    CHECK_INT_EQ(count_drift(ts), 0);

    /* An append is adopted under the quota of the target's tenant. */
    CHECK_INT_EQ(upload(s, "c_stage", "b", 15), TM_OK);
    CHECK_INT_EQ(upload(s, "c_b2", "b", 10), TM_OK);
    CHECK_INT_EQ(s->m->corpus_commit(s->ctx, "c_b2", err), TM_OK);
    CHECK_INT_EQ(s->m->corpus_adopt(s->ctx, "c_b1", "c_stage", err), TM_ETOOBIG);
    CHECK_INT_EQ(stored(s, "b"), 90);
    CHECK_INT_EQ(s->m->corpus_delete(s->ctx, "c_b2", err), TM_OK);
    CHECK_INT_EQ(s->m->corpus_adopt(s->ctx, "c_b1", "c_stage", err), TM_OK);
    CHECK_INT_EQ(s->m->corpus_get(s->ctx, "c_b1", &c, err), TM_OK);
    CHECK_INT_EQ(c.bytes, 95);
    CHECK_INT_EQ(stored(s, "b"), 95);

    /* Expired jobs give theirs back too; no quota: nothing refused. */
    struct tm_store_quotas none = {0, 0};
    s->m->set_quotas(s->ctx, &none);
    CHECK_INT_EQ(submit(s, "j_b1", "b", 200, &full, err), TM_OK);
    CHECK_INT_EQ(stored(s, "b"), 295);
    struct tm_job_record jr;
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_b1", &jr, err), TM_OK);
    jr.state = TM_JOB_CANCELLED;
    jr.finished_at = 1;
    CHECK_INT_EQ(s->m->job_update(s->ctx, NULL, &jr, err), TM_OK);
    int64_t n = 0;
    CHECK_INT_EQ(s->m->job_expire(s->ctx, 2, 10, &n, err), TM_OK);
    CHECK_INT_EQ(n, 1);
    CHECK_INT_EQ(stored(s, "b"), 95);
    CHECK_INT_EQ(count_drift(ts), 0);
}

/* The running cap: a tenant with quotas.running jobs running is skipped,
 * its other jobs wait, and they are claimed once one of its jobs ends. */
TM_STORE_TEST(store_quota_running)
{
    struct tm_store *s = &ts->store;
    char err[TM_ERR_SIZE];
    struct tm_store_quotas q = {0, 1};
    s->m->set_quotas(s->ctx, &q);
    const char *ids[4] = {"j_a1", "j_a2", "j_a3", "j_b1"};
    for (int i = 0; i < 4; i++) {
        const char *tenant = i < 3 ? "a" : "b";
        char client[TM_CLIENT_SIZE];
        snprintf(client, sizeof(client), "t:%s", tenant);
        struct tm_job_record j = job(ids[i], tenant);
        CHECK_INT_EQ(s->m->job_insert(s->ctx, &j, "{}", 2, NULL, client, err), TM_OK);
    }
    struct tm_store_claimed c1, c2, c3;
    CHECK_INT_EQ(s->m->job_claim(s->ctx, "r_1", tm_clock_unix(), 30, &c1, err), TM_OK);
    CHECK_STR_EQ(c1.job.id, "j_a1");
    CHECK_INT_EQ(s->m->job_claim(s->ctx, "r_1", tm_clock_unix(), 30, &c2, err), TM_OK);
    CHECK_STR_EQ(c2.job.id, "j_b1");
    /* a is at its cap and b has nothing queued: two of a's wait. */
    CHECK_INT_EQ(s->m->job_claim(s->ctx, "r_1", tm_clock_unix(), 30, &c3, err), TM_ENOTFOUND);
    struct tm_store_use u;
    CHECK_INT_EQ(s->m->tenant_use(s->ctx, "a", &u, err), TM_OK);
    CHECK_INT_EQ(u.queued, 2);
    CHECK_INT_EQ(u.running, 1);
    /* a's job ends: its next one runs, and only one. */
    struct tm_job_claim tok;
    memset(&tok, 0, sizeof(tok));
    snprintf(tok.id, sizeof(tok.id), "%s", c1.job.id);
    tok.attempt = c1.job.attempts;
    snprintf(tok.owner, sizeof(tok.owner), "r_1");
    struct tm_job_record done = c1.job;
    done.state = TM_JOB_SUCCEEDED;
    done.finished_at = tm_clock_unix();
    CHECK_INT_EQ(s->m->job_update(s->ctx, &tok, &done, err), TM_OK);
    CHECK_INT_EQ(s->m->job_claim(s->ctx, "r_1", tm_clock_unix(), 30, &c3, err), TM_OK);
    CHECK_STR_EQ(c3.job.id, "j_a2");
    CHECK_INT_EQ(s->m->job_claim(s->ctx, "r_1", tm_clock_unix(), 30, &c3, err), TM_ENOTFOUND);
    /* Without the cap, a's last job runs beside the other. */
    struct tm_store_quotas none = {0, 0};
    s->m->set_quotas(s->ctx, &none);
    CHECK_INT_EQ(s->m->job_claim(s->ctx, "r_1", tm_clock_unix(), 30, &c3, err), TM_OK);
    CHECK_STR_EQ(c3.job.id, "j_a3");
}

/* usage_top: the TM_STORE_USAGE_TOP tenants with the most, each list in
 * order, and the others summed. */
TM_STORE_TEST(store_quota_usage_top)
{
    struct tm_store *s = &ts->store;
    char err[TM_ERR_SIZE];
    int n = TM_STORE_USAGE_TOP + 2;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        char id[TM_ID_SIZE], tenant[16];
        snprintf(id, sizeof(id), "c_t%d", i);
        snprintf(tenant, sizeof(tenant), "t%02d", i);
        CHECK_INT_EQ(upload(s, id, tenant, (size_t)(10 + i)), TM_OK);
        CHECK_INT_EQ(s->m->corpus_commit(s->ctx, id, err), TM_OK);
        total += 10 + i;
        /* i + 1 queued jobs for tenant i. */
        for (int k = 0; k <= i; k++) {
            snprintf(id, sizeof(id), "j_%d_%d", i, k);
            struct tm_job_record j = job(id, tenant);
            CHECK_INT_EQ(s->m->job_insert(s->ctx, &j, "", 0, NULL, "", err), TM_OK);
        }
    }
    struct tm_store_usage u;
    CHECK_INT_EQ(s->m->usage_top(s->ctx, &u, err), TM_OK);
    CHECK_INT_EQ(u.n_stored, TM_STORE_USAGE_TOP);
    CHECK_STR_EQ(u.stored[0].tenant, "t11");
    CHECK_INT_EQ(u.stored[0].stored_bytes, 21);
    int64_t sum = u.stored_other;
    for (int i = 0; i < u.n_stored; i++) {
        sum += u.stored[i].stored_bytes;
        if (i)
            CHECK(u.stored[i].stored_bytes <= u.stored[i - 1].stored_bytes);
    }
    CHECK_INT_EQ(sum, total);
    CHECK_INT_EQ(u.stored_other, 10 + 11);
    CHECK_INT_EQ(u.n_jobs, TM_STORE_USAGE_TOP);
    CHECK_STR_EQ(u.jobs[0].tenant, "t11");
    CHECK_INT_EQ(u.jobs[0].queued, 12);
    CHECK_INT_EQ(u.queued_other, 1 + 2);
    CHECK_INT_EQ(u.running_other, 0);
}

/* Replicas committing at once for one tenant never pass its quota
 * together: each of THREADS stores (another process's, on PostgreSQL)
 * commits corpora of 10 bytes until refused; the quota holds exactly. */
#define THREADS 4
struct racer {
    struct tm_store *s;
    int i, committed;
    pthread_barrier_t *go;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    char err[TM_ERR_SIZE], id[TM_ID_SIZE];
    pthread_barrier_wait(r->go);
    for (int k = 0; k < 20; k++) {
        snprintf(id, sizeof(id), "c_r%d_%d", r->i, k);
        if (upload(r->s, id, "a", 10))
            continue; /* the early no */
        if (r->s->m->corpus_commit(r->s->ctx, id, err) == TM_OK)
            r->committed++;
        else
            r->s->m->corpus_delete(r->s->ctx, id, err);
    }
    return NULL;
}

TM_STORE_TEST(store_quota_race)
{
    char err[TM_ERR_SIZE];
    struct tm_store others[THREADS];
    struct tm_store_quotas q = {250, 0};
    int pg = ts->driver == TM_STORE_PG, opened = 0;
    for (; opened < THREADS; opened++) {
        if (!pg) {
            others[opened] = ts->store; /* one process: the store is shared */
        } else if (tm_tmpstore_open_again(ts, &others[opened], err)) {
            tm_test_fail(t, __FILE__, __LINE__, err);
            break;
        }
        others[opened].m->set_quotas(others[opened].ctx, &q);
    }
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)opened);
    pthread_t th[THREADS];
    struct racer r[THREADS];
    for (int i = 0; i < opened; i++) {
        r[i] = (struct racer){&others[i], i, 0, &go};
        pthread_create(&th[i], NULL, race, &r[i]);
    }
    int committed = 0;
    for (int i = 0; i < opened; i++) {
        pthread_join(th[i], NULL);
        committed += r[i].committed;
    }
    pthread_barrier_destroy(&go);
    CHECK_INT_EQ(committed, 25);
    CHECK_INT_EQ(stored(&ts->store, "a"), 250);
    CHECK_INT_EQ(count_drift(ts), 0);
    for (int i = 0; pg && i < opened; i++)
        tm_store_close(&others[i]);
}

/* A store the release before quotas wrote (schema version 2, its corpora
 * and jobs all the tenant "default"'s) is counted when it migrates. */
TM_STORE_TEST(store_quota_migrate_v2)
{
    char err[TM_ERR_SIZE];
    REQUIRE(tm_tmpstore_open_release(ts, 2, err) == 0);
    CHECK_INT_EQ(count_drift(ts), 0);
    CHECK(stored(&ts->store, "default") > 0);
}

/* The running cap across replicas: THREADS stores claim at once from one
 * tenant's queue (its jobs all under its fairness key, as with API keys)
 * with a cap of 1: exactly one job starts. */
struct claimer {
    struct tm_store *s;
    int claimed;
    pthread_barrier_t *go;
};

static void *claim_once(void *arg)
{
    struct claimer *c = arg;
    char err[TM_ERR_SIZE];
    struct tm_store_claimed got;
    pthread_barrier_wait(c->go);
    c->claimed = c->s->m->job_claim(c->s->ctx, "r_x", tm_clock_unix(), 30, &got, err) == TM_OK;
    return NULL;
}

TM_STORE_TEST(store_quota_running_race)
{
    char err[TM_ERR_SIZE];
    struct tm_store others[THREADS];
    struct tm_store_quotas q = {0, 1};
    int pg = ts->driver == TM_STORE_PG, opened = 0;
    for (int i = 0; i < 20; i++) {
        char id[TM_ID_SIZE];
        snprintf(id, sizeof(id), "j_%d", i);
        struct tm_job_record j = job(id, "a");
        CHECK_INT_EQ(ts->store.m->job_insert(ts->store.ctx, &j, "{}", 2, NULL, "t:a", err), TM_OK);
    }
    for (int round = 0; round < 5; round++) {
        for (; opened < THREADS; opened++) {
            if (!pg) {
                others[opened] = ts->store;
            } else if (tm_tmpstore_open_again(ts, &others[opened], err)) {
                tm_test_fail(t, __FILE__, __LINE__, err);
                break;
            }
            others[opened].m->set_quotas(others[opened].ctx, &q);
        }
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, (unsigned)opened);
        pthread_t th[THREADS];
        struct claimer c[THREADS];
        for (int i = 0; i < opened; i++) {
            c[i] = (struct claimer){&others[i], 0, &go};
            pthread_create(&th[i], NULL, claim_once, &c[i]);
        }
        int claimed = 0;
        for (int i = 0; i < opened; i++) {
            pthread_join(th[i], NULL);
            claimed += c[i].claimed;
        }
        pthread_barrier_destroy(&go);
        CHECK_INT_EQ(claimed, round == 0 ? 1 : 0);
        struct tm_store_use u;
        CHECK_INT_EQ(ts->store.m->tenant_use(ts->store.ctx, "a", &u, err), TM_OK);
        CHECK_INT_EQ(u.running, 1);
    }
    for (int i = 0; pg && i < opened; i++)
        tm_store_close(&others[i]);
}
