/* model.c - fit parameter defaults and result release (see model.h). */
#include "core/model.h"

#include <string.h>

#include "core/alloc.h"

void tm_model_params_init(struct tm_model_params *p)
{
    memset(p, 0, sizeof(*p));
    p->method = TM_METHOD_NMF;
    p->n_topics = 10;
    p->n_top_words = 10;
    p->seed = 0;
    p->device = TM_DEVICE_AUTO;
    p->dtype = TM_DTYPE_AUTO;
    p->algorithm = TM_SVD_RANDOMIZED;
    p->n_oversamples = 10;
    p->n_iter = -1;
    p->power_iteration_normalizer = TM_PIN_AUTO;
    p->svd_tol = 1e-6;
    p->svd_max_iter = 0;
    p->max_dense_bytes = (int64_t)2 << 30;
    p->init = TM_NMF_INIT_AUTO;
    p->solver = TM_NMF_CD;
    p->beta_loss = TM_BETA_FROBENIUS;
    p->tol = 1e-4;
    p->max_iter = 200;
    p->alpha_W = 0.0;
    p->alpha_H = -1.0;
    p->l1_ratio = 0.0;
    p->shuffle = 0;
    p->learning_rate = 1e-2;
    p->learning_rate_decay = 0.0;
    p->penalty = 1e3;
    p->penalty_mu = 1e-6;
    p->batch_size = 1024;
    p->forget_factor = 0.7;
    p->fresh_restarts = 0;
    p->fresh_restarts_max_iter = 30;
    p->max_no_improvement = 10;
    p->transform_max_iter = 0;
    p->n_threads = 0;
}

void tm_fit_result_release(struct tm_fit_result *r)
{
    tm_free(r->components.data);
    tm_free(r->document_topics.data);
    tm_free(r->top_terms);
    tm_free(r->top_weights);
    tm_free(r->singular_values);
    tm_free(r->explained_variance_ratio);
    tm_free(r->error_trace);
    tm_free(r->sweep);
    tm_free(r->coherence_per_topic);
    memset(r, 0, sizeof(*r));
}
