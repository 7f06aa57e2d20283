/* worker.c - one job, start to finish, on a worker thread (see worker.h). */
#include "worker.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/apply.h"
#include "api/model_file.h"
#include "api/result.h"
#include "api/spec.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/fit.h"
#include "core/sweep.h"
#include "core/text/coherence.h"
#include "log.h"

/* The job's progress is vectorizing for the first VEC_SHARE, fitting after. */
#define VEC_SHARE 0.2

struct stage_map {
    const struct tm_progress *job;
    double base, scale;
};

static int mapped_report(void *ctx, const char *stage, double fraction)
{
    struct stage_map *m = ctx;
    if (fraction < 0)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    return tm_progress_report(m->job, stage, m->base + m->scale * fraction);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static void fail(struct tm_job_outcome *out, tm_status st, const char *field, const char *msg)
{
    out->status = st;
    snprintf(out->error_code, sizeof(out->error_code), "%s", tm_api_error_code(st));
    if (field && *field)
        snprintf(out->error_message, sizeof(out->error_message), "%s: %s", field,
                 msg && *msg ? msg : tm_strerror(st));
    else
        snprintf(out->error_message, sizeof(out->error_message), "%s",
                 msg && *msg ? msg : tm_strerror(st));
}

/* tm_fit, or tm_sweep_fit when model.n_topics is a list or a range: either
 * way an ordinary fit of one k comes back. */
static tm_status fit_spec(const struct tm_backend_ops *backend, void *backend_ctx,
                          const struct tm_csr *X, const struct tm_job_spec *spec,
                          const struct tm_coherence_corpus *cc, int threads,
                          const struct tm_progress *p, struct tm_fit_result *fit, char *err)
{
    if (!spec->n_sweep)
        return tm_fit(backend, backend_ctx, X, &spec->model, p, fit, err);
    struct tm_sweep_params sw = {spec->sweep_topics,    spec->n_sweep, spec->sweep_warm_start, cc,
                                 spec->model.coherence, threads};
    return tm_sweep_fit(backend, backend_ctx, X, &spec->model, &sw, p, fit, err);
}

/* The texts of the job's corpus from the store, as documents: *docs the
 * store's copy, *dv views into it (the caller releases both, whatever the
 * outcome). read_s: NULL, or the load is a stage ("load" reported) whose
 * seconds go there. On failure out says why (field corpus_id) and the
 * result is non-zero. */
static int load_corpus_docs(struct tm_store *store, const struct tm_job_run *run,
                            struct tm_store_docs *docs, struct tm_doc **dv, double *read_s,
                            struct tm_job_outcome *out)
{
    char err[TM_ERR_SIZE] = "";
    struct timespec tr;
    clock_gettime(CLOCK_MONOTONIC, &tr);
    if (read_s)
        tm_progress_report(&run->progress, "load", 0);
    tm_status st = store->m->corpus_load(store->ctx, run->job->corpus_id, docs, err);
    if (st) {
        fail(out, st, "corpus_id", err);
        return -1;
    }
    if (!(*dv = tm_mallocarray((size_t)(docs->n ? docs->n : 1), sizeof(**dv)))) {
        fail(out, TM_ENOMEM, NULL, NULL);
        return -1;
    }
    for (int64_t i = 0; i < docs->n; i++) {
        (*dv)[i].text = docs->pool + docs->offsets[i];
        (*dv)[i].len = (size_t)(docs->offsets[i + 1] - docs->offsets[i]);
    }
    if (read_s)
        *read_s = seconds_since(&tr);
    return 0;
}

static int gpu_wait_cancelled(void *ctx)
{
    const struct tm_job_run *run = ctx;
    return tm_progress_report(&run->progress, "gpu_wait", VEC_SHARE);
}

/*
 * A transform job (POST /v1/jobs/{id}:transform, api/apply.h): the source
 * job's kept model, read again here because it may have been deleted since
 * the route checked it, applied to the spec's documents or the job's corpus;
 * the weights are stored as a fit's are.
 */
static void run_transform(struct tm_worker_ctx *w, const struct tm_job_run *run,
                          const struct tm_job_spec *spec, const struct timespec *t0,
                          struct tm_job_outcome *out)
{
    struct tm_store *store = w->store;
    char err[TM_ERR_SIZE] = "", msg[TM_ERR_SIZE + 96];
    struct tm_job_record src;
    struct tm_model_file model;
    struct tm_transform_result res;
    struct tm_store_docs docs;
    struct tm_doc *dv = NULL;
    char *bytes = NULL;
    size_t len = 0;
    int have_model = 0;
    double read_s = 0;
    memset(&res, 0, sizeof(res));
    memset(&docs, 0, sizeof(docs));
    tm_status st = store->m->job_get(store->ctx, spec->transform_of, &src, err);
    if (st == TM_OK && strcmp(src.tenant, run->job->tenant))
        st = TM_ENOTFOUND; /* another tenant's job is no job to this one */
    if (st == TM_ENOTFOUND) {
        fail(out, st, "transform_of", "the source job no longer exists (deleted meanwhile)");
        goto out;
    }
    if (st) {
        fail(out, st, "transform_of", err);
        goto out;
    }
    if (src.state != TM_JOB_SUCCEEDED) {
        fail(out, TM_EINVAL, "transform_of", "the source job has not succeeded");
        goto out;
    }
    st = store->m->job_model(store->ctx, src.id, &bytes, &len, err);
    if (st == TM_ENOTFOUND) {
        fail(out, st, "transform_of",
             "the source job has no model (deleted meanwhile, or fitted before models were kept)");
        goto out;
    }
    if (st) {
        fail(out, st, "transform_of", err);
        goto out;
    }
    st = tm_model_file_read(bytes, len, &model, err);
    tm_free(bytes);
    bytes = NULL;
    if (st) {
        tm_model_file_release(&model);
        snprintf(msg, sizeof(msg), "the source job's model cannot be read: %s", err);
        fail(out, st, "transform_of", msg);
        goto out;
    }
    have_model = 1;
    const struct tm_doc *input = spec->documents.docs;
    int64_t n_docs = spec->documents.n_docs;
    int inline_docs = !run->job->corpus_id[0];
    if (!inline_docs) {
        if (load_corpus_docs(store, run, &docs, &dv, &read_s, out))
            goto out;
        input = dv;
        n_docs = docs.n;
    }
    st = tm_apply_run(&model, input, n_docs, NULL, NULL, w->vectorize_threads, &run->progress, &res,
                      err);
    if (st) {
        fail(out, st, "documents", err);
        goto out;
    }
    st = tm_apply_render_job(src.id, &model, &res, read_s, seconds_since(t0), &out->result_json,
                             &out->result_len);
    if (st) {
        fail(out, st, NULL, st == TM_ENUMERIC ? "a number is NaN or Inf" : NULL);
        goto out;
    }
    int64_t m = res.document_topics.rows, k = res.document_topics.cols;
    if (m > 0 && k > 0) {
        out->doc_topics = tm_mallocarray((size_t)(m * k), sizeof(double));
        if (!out->doc_topics) {
            fail(out, TM_ENOMEM, NULL, "document topics");
            tm_free(out->result_json);
            out->result_json = NULL;
            goto out;
        }
        for (int64_t i = 0; i < m; i++)
            for (int64_t t = 0; t < k; t++) {
                double v = res.document_topics.data[i + t * m];
                if (!isfinite(v)) {
                    fail(out, TM_ENUMERIC, NULL, "a topic weight is NaN or Inf");
                    tm_free(out->result_json);
                    out->result_json = NULL;
                    goto out;
                }
                out->doc_topics[i * k + t] = v;
            }
        out->n_documents = m;
        out->n_topics = k;
        if (inline_docs && spec->documents.ids && spec->documents.n_docs == m) {
            out->doc_ids = tm_calloc((size_t)m, sizeof(char *));
            for (int64_t i = 0; out->doc_ids && i < m; i++)
                if (spec->documents.ids[i])
                    out->doc_ids[i] =
                        tm_strndup(spec->documents.ids[i], strlen(spec->documents.ids[i]));
        }
    }
    out->status = TM_OK;
out:
    tm_transform_result_release(&res);
    if (have_model)
        tm_model_file_release(&model);
    tm_free(dv);
    tm_store_docs_release(&docs);
    tm_free(bytes);
}

void tm_worker_run(void *ctx, const struct tm_job_run *run, struct tm_job_outcome *out)
{
    struct tm_worker_ctx *w = ctx;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char err[TM_ERR_SIZE] = "";
    struct tm_api_error e;
    tm_api_error_clear(&e);
    struct tm_job_spec spec;
    tm_job_spec_init(&spec);
    struct tm_store_docs docs;
    memset(&docs, 0, sizeof(docs));
    struct tm_doc *dv = NULL;
    struct tm_vectorized fresh;
    memset(&fresh, 0, sizeof(fresh));
    struct tm_matrix_ref *ref = NULL;
    const struct tm_vectorized *v = NULL;
    struct tm_fit_result fit;
    memset(&fit, 0, sizeof(fit));
    char *key = NULL, *ckey = NULL;
    size_t key_len = 0, ckey_len = 0;
    struct tm_coherence_corpus *cc = NULL; /* model.coherence's token streams */
    double coherence_s = 0;
    tm_status st;

    st = tm_job_spec_parse(&spec, run->spec, run->spec_len, NULL, &e);
    if (st) {
        fail(out, st, e.field, e.message);
        goto done;
    }
    if (spec.transform_of) {
        run_transform(w, run, &spec, &t0, out);
        goto done;
    }
    if (!spec.has_model) {
        fail(out, TM_EINVAL, "model", "required");
        goto done;
    }
    spec.vectorizer.n_threads = w->vectorize_threads;
    double read_s = 0;

    int inline_docs = !run->job->corpus_id[0];
    if (!inline_docs) {
        struct tm_corpus_record c;
        st = w->store->m->corpus_get(w->store->ctx, run->job->corpus_id, &c, err);
        if (st) {
            fail(out, st, "corpus_id", err);
            goto done;
        }
        st = tm_job_spec_vectorizer_key(&spec, &key, &key_len);
        if (st) {
            fail(out, st, NULL, NULL);
            goto done;
        }
        st = tm_matrix_cache_key(c.id, c.n_documents, key, key_len, &ckey, &ckey_len);
        if (st) {
            fail(out, st, NULL, NULL);
            goto done;
        }
        v = tm_matrix_cache_get(w->cache, ckey, ckey_len, &ref);
        if (v)
            TM_LOG(TM_LOG_DEBUG, "matrix cache hit", "s:job_id", run->job->id, NULL);
    }

    if (!v) {
        const struct tm_doc *input;
        int64_t n_docs;
        if (inline_docs) {
            input = spec.documents.docs;
            n_docs = spec.documents.n_docs;
        } else {
            if (load_corpus_docs(w->store, run, &docs, &dv, &read_s, out))
                goto done;
            input = dv;
            n_docs = docs.n;
        }
        struct stage_map sm = {&run->progress, 0, VEC_SHARE};
        struct tm_progress p = {mapped_report, &sm};
        st = tm_vectorize(&spec.vectorizer, input, n_docs, &p, &fresh, err);
        if (st) {
            fail(out, st, "vectorizer", err);
            goto done;
        }
        if (spec.model.coherence) {
            double tc = tm_clock_monotonic();
            st = tm_coherence_corpus_new(&spec.vectorizer, input, n_docs, &fresh.vocab, &cc, err);
            if (st) {
                fail(out, st, "model.coherence", err);
                goto done;
            }
            coherence_s = tm_clock_monotonic() - tc;
        }
        /* The texts are not needed any more: free them before the fit. */
        tm_free(dv);
        dv = NULL;
        tm_store_docs_release(&docs);
        if (!inline_docs) {
            v = tm_matrix_cache_put(w->cache, ckey, ckey_len, &fresh, &ref);
            if (!v) {
                fail(out, TM_ENOMEM, NULL, "caching the matrix");
                goto done;
            }
        } else {
            v = &fresh;
        }
    }

    if (spec.model.coherence && !cc) {
        /* A cached matrix comes without its texts: read them again. */
        double tc = tm_clock_monotonic();
        const struct tm_doc *input = spec.documents.docs;
        int64_t n_docs = spec.documents.n_docs;
        if (!inline_docs) {
            if (load_corpus_docs(w->store, run, &docs, &dv, NULL, out))
                goto done;
            input = dv;
            n_docs = docs.n;
        }
        st = tm_coherence_corpus_new(&spec.vectorizer, input, n_docs, &v->vocab, &cc, err);
        tm_free(dv);
        dv = NULL;
        tm_store_docs_release(&docs);
        if (st) {
            fail(out, st, "model.coherence", err);
            goto done;
        }
        coherence_s = tm_clock_monotonic() - tc;
    }

    /* CPU or GPU: the manager decides (and "gpu" jobs may wait for room,
     * showing stage "gpu_wait", cancellable). */
    spec.model.n_threads = w->vectorize_threads;
    struct tm_gpu_job gj = {&spec.model, v->matrix.n_rows, v->matrix.n_cols,
                            tm_csr_nnz(&v->matrix)};
    struct tm_gpu_wait wait = {w->gpu_wait_ms, gpu_wait_cancelled, (void *)run};
    struct tm_gpu_lease lease;
    memset(&lease, 0, sizeof(lease));
    if (w->gpu) {
        st = tm_gpu_manager_acquire(w->gpu, &gj, &wait, &lease, err);
        if (st) {
            fail(out, st, "device", err);
            goto done;
        }
        if (!lease.on_gpu)
            spec.model.dtype = tm_gpu_manager_cpu_dtype(&gj, &lease);
    }
    struct stage_map sm = {&run->progress, VEC_SHARE, 1 - VEC_SHARE};
    struct tm_progress p = {mapped_report, &sm};
    /* The lease's backend and context: both NULL (the CPU) without a GPU. */
    st = fit_spec(lease.backend, lease.backend_ctx, &v->matrix, &spec, cc, w->vectorize_threads, &p,
                  &fit, err);
    if (w->gpu) {
        tm_gpu_manager_release(w->gpu, &lease, st);
        if (st && tm_gpu_manager_retry_on_cpu(w->gpu, &gj, &lease, st)) {
            TM_LOG(TM_LOG_WARN, "gpu fit failed; retrying on the cpu", "s:job_id", run->job->id,
                   "s:error", err, NULL);
            tm_fit_result_release(&fit);
            spec.model.dtype = tm_gpu_manager_cpu_dtype(&gj, &lease);
            spec.model.device = TM_DEVICE_CPU;
            st = fit_spec(NULL, NULL, &v->matrix, &spec, cc, w->vectorize_threads, &p, &fit, err);
        }
    }
    if (st) {
        fail(out, st, "model", err);
        goto done;
    }
    if (cc) {
        st = tm_coherence_score_result(cc, spec.model.coherence, w->vectorize_threads, &fit, err);
        if (st) {
            fail(out, st, "model.coherence", err);
            goto done;
        }
        fit.seconds_coherence += coherence_s; /* the token streams included */
        tm_coherence_corpus_free(cc);
        cc = NULL;
    }

    /* The model kept with the job (GET /v1/jobs/{id}/model), before the
     * result so that the result says its size. One larger than a store
     * keeps is not kept: the job succeeds without it (404 no_model). */
    struct tm_model_file_parts mp = {.fit = &fit,
                                     .v = v,
                                     .spec = &spec,
                                     .term_frequency = v->term_frequency,
                                     .doc_lengths = v->doc_lengths,
                                     .components_float32 = 1,
                                     .max_bytes = TM_STORE_MAX_MODEL_BYTES};
    st = tm_model_file_write(&mp, &out->model, &out->model_len, err);
    if (st == TM_ETOOBIG) {
        TM_LOG(TM_LOG_WARN, "model not kept", "s:job_id", run->job->id, "s:error", err, NULL);
        out->model = NULL;
        out->model_len = 0;
    } else if (st) {
        fail(out, st, "model", err);
        goto done;
    }
    struct tm_result_timings tt;
    tm_result_timings_init(&tt);
    tt.read = read_s;
    tt.total = seconds_since(&t0);
    tt.model_bytes = out->model ? (int64_t)out->model_len : -1;
    st = tm_result_render_fit(&fit, v, &spec, &tt, &out->result_json, &out->result_len, &e);
    if (st) {
        fail(out, st, e.field, e.message);
        goto done;
    }
    /* Row-major per-document weights for the paginated endpoint. */
    int64_t m = fit.document_topics.rows, k = fit.document_topics.cols;
    if (fit.document_topics.data && m > 0 && k > 0) {
        out->doc_topics = tm_mallocarray((size_t)(m * k), sizeof(double));
        if (!out->doc_topics) {
            fail(out, TM_ENOMEM, NULL, "document topics");
            tm_free(out->result_json);
            out->result_json = NULL;
            goto done;
        }
        for (int64_t i = 0; i < m; i++)
            for (int64_t t = 0; t < k; t++)
                out->doc_topics[i * k + t] = fit.document_topics.data[i + t * m];
        out->n_documents = m;
        out->n_topics = k;
        /* Inline documents live in no corpus: their ids go with the weights. */
        if (inline_docs && spec.documents.ids && spec.documents.n_docs == m) {
            out->doc_ids = tm_calloc((size_t)m, sizeof(char *));
            for (int64_t i = 0; out->doc_ids && i < m; i++)
                if (spec.documents.ids[i])
                    out->doc_ids[i] =
                        tm_strndup(spec.documents.ids[i], strlen(spec.documents.ids[i]));
        }
    }
    out->status = TM_OK;

done:
    tm_coherence_corpus_free(cc);
    tm_fit_result_release(&fit);
    if (ref)
        tm_matrix_cache_release(w->cache, ref);
    tm_vectorized_release(&fresh);
    tm_free(dv);
    tm_store_docs_release(&docs);
    tm_free(ckey);
    tm_free(key);
    tm_job_spec_release(&spec);
}
