/* sweep.c - fit a list of k, derive or keep each, suggest one (see sweep.h). */
#include "core/sweep.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/fit.h"
#include "core/numerics/nmf.h"
#include "core/text/coherence.h"

/* A point this far below the chord (in the [0, 1] scaled plot) is a knee;
 * closer, it is rounding on a straight line. */
#define KNEE_MIN_DISTANCE 1e-9

int64_t tm_sweep_knee(const int64_t *k, const double *error, int64_t n)
{
    if (n < 3 || k[n - 1] <= k[0])
        return -1;
    double lo = error[0], hi = error[0];
    for (int64_t i = 1; i < n; i++) {
        lo = fmin(lo, error[i]);
        hi = fmax(hi, error[i]);
    }
    if (!(hi > lo))
        return -1;
    double span = (double)(k[n - 1] - k[0]), y0 = (error[0] - lo) / (hi - lo);
    double y1 = (error[n - 1] - lo) / (hi - lo);
    int64_t best = -1;
    double best_d = KNEE_MIN_DISTANCE;
    for (int64_t i = 1; i < n - 1; i++) {
        double x = (double)(k[i] - k[0]) / span, y = (error[i] - lo) / (hi - lo);
        /* Vertical distance below the chord: the perpendicular one times a
         * constant, so the same argmax. */
        double d = y0 + (y1 - y0) * x - y;
        if (d > best_d) {
            best_d = d;
            best = i;
        }
    }
    return best;
}

/* The measure a sweep scores its points with: the first asked of c_v,
 * c_npmi, c_uci, u_mass; -1 for none. */
static int sweep_measure(const struct tm_sweep_params *sw)
{
    static const enum tm_coherence_measure order[] = {TM_COHERENCE_C_V, TM_COHERENCE_C_NPMI,
                                                      TM_COHERENCE_C_UCI, TM_COHERENCE_U_MASS};
    if (!sw->coherence)
        return -1;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (sw->measures & TM_COHERENCE_BIT(order[i]))
            return (int)order[i];
    return -1;
}

/* The mean coherence of the first k topics of r (its top words) by measure
 * m into *out. */
static tm_status score_k(const struct tm_sweep_params *sw, int m, const struct tm_fit_result *r,
                         int64_t k, double *out, char *err)
{
    double mean[TM_COHERENCE_N_MEASURES];
    double *per_topic = tm_mallocarray((size_t)k * TM_COHERENCE_N_MEASURES, sizeof(double));
    if (!per_topic)
        return tm_errf(err, TM_ENOMEM, "sweep: cannot allocate the coherence scores");
    tm_status st = tm_coherence_score(sw->coherence, TM_COHERENCE_BIT(m), r->top_terms, k,
                                      r->n_top_words, sw->n_threads, per_topic, mean, err);
    tm_free(per_topic);
    if (st == TM_OK)
        *out = mean[m];
    return st;
}

static tm_status check_list(const struct tm_sweep_params *sw, char *err)
{
    if (!sw || !sw->n_topics || sw->n < 1)
        return tm_errf(err, TM_EINVAL, "model.n_topics: a sweep needs at least one value");
    if (sw->n > TM_SWEEP_MAX)
        return tm_errf(err, TM_ERANGE, "model.n_topics: at most %d values of k, got %lld",
                       TM_SWEEP_MAX, (long long)sw->n);
    for (int64_t i = 0; i < sw->n; i++) {
        if (sw->n_topics[i] < 1)
            return tm_errf(err, TM_ERANGE, "model.n_topics[%lld]: must be at least 1, got %lld",
                           (long long)i, (long long)sw->n_topics[i]);
        if (i && sw->n_topics[i] <= sw->n_topics[i - 1])
            return tm_errf(err, TM_EINVAL, "model.n_topics: the values must increase (%lld, %lld)",
                           (long long)sw->n_topics[i - 1], (long long)sw->n_topics[i]);
    }
    return TM_OK;
}

/* Keeps the first k topics of an SVD fit of more: every per-topic array is
 * column- or topic-major, so a prefix, shrunk in place. */
static void svd_truncate(struct tm_fit_result *r, int64_t k)
{
    if (k == r->n_topics)
        return;
    double *p;
    size_t m = (size_t)r->document_topics.rows, n = (size_t)r->components.rows;
    if ((p = tm_realloc(r->components.data, n * (size_t)k * sizeof(double))))
        r->components.data = p;
    r->components.cols = k;
    if ((p = tm_realloc(r->document_topics.data, m * (size_t)k * sizeof(double))))
        r->document_topics.data = p;
    r->document_topics.cols = k;
    r->n_topics = k;
    /* top_terms / top_weights (k rows of n_top_words), singular values and
     * ratios keep their first k entries: the rest is left unread. */
}

static tm_status sweep_svd(const struct tm_backend_ops *backend, void *backend_ctx,
                           const struct tm_csr *X, const struct tm_model_params *params,
                           const struct tm_sweep_params *sw, const struct tm_progress *progress,
                           struct tm_fit_result *out, struct tm_sweep_point *pts, char *err)
{
    struct tm_model_params p = *params;
    p.n_topics = sw->n_topics[sw->n - 1];
    double t0 = tm_clock_monotonic();
    tm_status st = tm_fit(backend, backend_ctx, X, &p, progress, out, err);
    if (st != TM_OK)
        return st;
    double t1 = tm_clock_monotonic();
    double nx2 = tm_csr_frobenius_sq(X), ss = 0.0, ev = 0.0;
    int64_t t = 0;
    for (int64_t i = 0; i < sw->n; i++) {
        double ti = tm_clock_monotonic();
        for (; t < sw->n_topics[i]; t++) {
            ss += out->singular_values[t] * out->singular_values[t];
            ev += out->explained_variance_ratio[t];
        }
        pts[i].n_topics = sw->n_topics[i];
        pts[i].reconstruction_error = sqrt(nx2 - ss > 0 ? nx2 - ss : 0.0);
        pts[i].explained_variance = ev;
        pts[i].coherence = NAN;
        pts[i].n_iter = out->n_iter;
        pts[i].seconds = tm_clock_monotonic() - ti;
    }
    /* The factorization's time goes to the k it was made for. */
    pts[sw->n - 1].seconds += t1 - t0;
    /* Each k's topics are the first k of the factorization's. */
    int m = sweep_measure(sw);
    for (int64_t i = 0; m >= 0 && out->top_terms && i < sw->n; i++) {
        double ti = tm_clock_monotonic();
        if ((st = score_k(sw, m, out, sw->n_topics[i], &pts[i].coherence, err)) != TM_OK)
            return st;
        pts[i].seconds += tm_clock_monotonic() - ti;
    }
    return TM_OK;
}

/* Maps one fit's progress into its share of the sweep. */
struct share {
    const struct tm_progress *sweep;
    double base, scale;
};

static int share_report(void *ctx, const char *stage, double fraction)
{
    const struct share *s = ctx;
    fraction = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
    return tm_progress_report(s->sweep, stage, s->base + s->scale * fraction);
}

/* fits: sw->n zeroed results, filled here (the caller releases them);
 * *init_s: the seconds their inits took, summed. */
static tm_status sweep_nmf(const struct tm_backend_ops *backend, void *backend_ctx,
                           const struct tm_csr *X, const struct tm_model_params *params,
                           const struct tm_sweep_params *sw, const struct tm_progress *progress,
                           struct tm_fit_result *fits, struct tm_sweep_point *pts, double *init_s,
                           char *err)
{
    const struct tm_backend_ops *ops = backend ? backend : tm_backend_cpu();
    void *ctx = backend_ctx;
    int owned = 0;
    tm_status st = TM_OK;
    int64_t m = X->n_rows, n = X->n_cols, total = 0;
    for (int64_t i = 0; i < sw->n; i++)
        total += sw->n_topics[i];
    double keep = (double)total * (double)(m + n) * sizeof(double);
    if (keep > (double)TM_SWEEP_KEEP_BYTES)
        return tm_errf(err, TM_ETOOBIG,
                       "model.n_topics: an NMF sweep keeps every k's factors, %.3g GB for "
                       "these %lld values of k (at most %.3g GB): sweep fewer or smaller k",
                       keep / 1e9, (long long)sw->n, (double)TM_SWEEP_KEEP_BYTES / 1e9);
    /* One context for every k (tm_fit would make one a fit). */
    if (!ctx) {
        struct tm_backend_config cfg = {params->dtype, 0, params->n_threads};
        if ((st = ops->create(&cfg, &ctx, err)) != TM_OK)
            return st;
        owned = 1;
    }
    struct tm_model_params p = *params;
    int64_t done = 0;
    int measure = sweep_measure(sw);
    for (int64_t i = 0; i < sw->n; i++) {
        int64_t k = sw->n_topics[i];
        struct share sh = {progress, (double)done / (double)total, (double)k / (double)total};
        struct tm_progress fp = {share_report, &sh};
        if (tm_progress_report(progress, "sweep", sh.base) != 0) {
            st = tm_errf(err, TM_ECANCELLED, "sweep: cancelled before k = %lld", (long long)k);
            break;
        }
        struct tm_nmf_start start = {0};
        if (sw->warm_start && i > 0)
            start = (struct tm_nmf_start){fits[i - 1].document_topics.data,
                                          fits[i - 1].components.data, sw->n_topics[i - 1]};
        p.n_topics = k;
        double t0 = tm_clock_monotonic();
        st = tm__fit_from(ops, ctx, X, &p, start.k ? &start : NULL, &fp, &fits[i], err);
        if (st != TM_OK)
            break;
        pts[i].n_topics = k;
        pts[i].reconstruction_error = fits[i].reconstruction_error;
        pts[i].explained_variance = NAN;
        pts[i].coherence = NAN;
        pts[i].n_iter = fits[i].n_iter;
        if (measure >= 0 && fits[i].top_terms &&
            (st = score_k(sw, measure, &fits[i], k, &pts[i].coherence, err)) != TM_OK)
            break;
        pts[i].seconds = tm_clock_monotonic() - t0;
        *init_s += fits[i].seconds_init;
        done += k;
    }
    if (owned)
        ops->destroy(ctx);
    return st;
}

tm_status tm_sweep_fit(const struct tm_backend_ops *backend, void *backend_ctx,
                       const struct tm_csr *X, const struct tm_model_params *params,
                       const struct tm_sweep_params *sweep, const struct tm_progress *progress,
                       struct tm_fit_result *out, char *err)
{
    memset(out, 0, sizeof(*out));
    tm_status st = check_list(sweep, err);
    if (st != TM_OK)
        return st;
    if (!backend && backend_ctx)
        return tm_errf(err, TM_EINVAL, "fit: a backend context without its backend");
    struct tm_model_params p = *params;
    p.n_topics = sweep->n_topics[sweep->n - 1];
    if ((st = tm_fit_validate(X, &p, err)) != TM_OK)
        return st;
    struct tm_sweep_point *pts = tm_calloc((size_t)sweep->n, sizeof(*pts));
    double *errors = tm_calloc((size_t)sweep->n, sizeof(double));
    struct tm_fit_result *fits = NULL;
    if (!pts || !errors) {
        st = tm_errf(err, TM_ENOMEM, "sweep: cannot allocate %lld points", (long long)sweep->n);
        goto out;
    }
    int nmf = params->method == TM_METHOD_NMF;
    double t0 = tm_clock_monotonic(), init_s = 0.0;
    if (nmf) {
        if (!(fits = tm_calloc((size_t)sweep->n, sizeof(*fits)))) {
            st = tm_errf(err, TM_ENOMEM, "sweep: cannot allocate %lld fits", (long long)sweep->n);
            goto out;
        }
        st = sweep_nmf(backend, backend_ctx, X, params, sweep, progress, fits, pts, &init_s, err);
    } else {
        st = sweep_svd(backend, backend_ctx, X, params, sweep, progress, out, pts, err);
    }
    if (st != TM_OK)
        goto out;
    for (int64_t i = 0; i < sweep->n; i++)
        errors[i] = pts[i].reconstruction_error;
    int64_t pick = -1;
    const char *rule = "best_coherence";
    for (int64_t i = 0; i < sweep->n; i++)
        if (isfinite(pts[i].coherence) && (pick < 0 || pts[i].coherence > pts[pick].coherence))
            pick = i;
    if (pick < 0) {
        pick = tm_sweep_knee(sweep->n_topics, errors, sweep->n);
        rule = "knee";
    }
    if (pick < 0) {
        pick = sweep->n - 1;
        rule = "largest";
    }
    if (nmf) {
        *out = fits[pick];
        memset(&fits[pick], 0, sizeof(fits[pick]));
    } else {
        svd_truncate(out, sweep->n_topics[pick]);
        out->reconstruction_error = pts[pick].reconstruction_error;
        init_s = out->seconds_init;
    }
    /* The job's timings are the whole sweep's: its inits, and the rest. */
    out->seconds_init = init_s;
    out->seconds_fit = tm_clock_monotonic() - t0 - init_s;
    out->sweep = pts;
    out->n_sweep = sweep->n;
    out->sweep_rule = rule;
    int m = sweep_measure(sweep);
    out->sweep_coherence = m >= 0 ? tm_coherence_name((enum tm_coherence_measure)m) : NULL;
    pts = NULL;
out:
    for (int64_t i = 0; fits && i < sweep->n; i++)
        tm_fit_result_release(&fits[i]);
    tm_free(fits);
    tm_free(errors);
    tm_free(pts);
    if (st != TM_OK)
        tm_fit_result_release(out);
    return st;
}
