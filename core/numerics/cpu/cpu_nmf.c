/*
 * cpu_nmf.c - the CPU backend's NMF kernels: the HALS sweep (cd), the
 * multiplicative (mu) and projected-gradient (pgd) updates, the fused halves
 * that gather, update and reduce a tile of rows in one pass, and the
 * Kullback-Leibler products; the code, in cpu_nmf_t.h, is compiled here once
 * per element type.
 */
#include "core/numerics/cpu/cpu_internal.h"

#include <math.h>

#include "core/alloc.h"

enum fused_rule { RULE_HALS, RULE_MU };

/* A k x rows matrix whose columns are contiguous: rows x k row-major. */
static int whole_rows(const struct tm_bmat *t, int64_t k)
{
    return t->rows == k && (t->ld == k || t->cols <= 1);
}

#define CPU_TEMPLATE "core/numerics/cpu/cpu_nmf_t.h"
#include "core/numerics/cpu/cpu_both.h"

tm_status tm__cpu_hals_sweep(void *ctx, const struct tm_bmat *m, const struct tm_bmat *g,
                             const struct tm_bmat *xht, double l1, double l2, const int64_t *perm,
                             double *violation, char *err)
{
    return (cpu_f32(ctx) ? f32_hals_sweep : f64_hals_sweep)(ctx, m, g, xht, l1, l2, perm, violation,
                                                            err);
}

tm_status tm__cpu_hals_sweep_fused(void *ctx, const struct tm_bsparse *s, int side,
                                   const struct tm_bmat *mt, const struct tm_bmat *ft,
                                   const struct tm_bmat *g, double l1, double l2,
                                   const int64_t *perm, double *violation, double *cross,
                                   const struct tm_bmat *gram, char *err)
{
    return (cpu_f32(ctx) ? f32_hals_sweep_fused : f64_hals_sweep_fused)(
        ctx, s, side, mt, ft, g, l1, l2, perm, violation, cross, gram, err);
}

tm_status tm__cpu_hals_inner_fused(void *ctx, const struct tm_bsparse *s, int side,
                                   const struct tm_bmat *mt, const struct tm_bmat *ft,
                                   const struct tm_bmat *g, double l1, double l2,
                                   const int64_t *perm, int64_t cap, double rho,
                                   const struct tm_bmat *mpt, double beta, double *violation,
                                   double *cross, const struct tm_bmat *gram,
                                   const struct tm_bmat *gram_hat, char *err)
{
    return (cpu_f32(ctx) ? f32_hals_inner_fused
                         : f64_hals_inner_fused)(ctx, s, side, mt, ft, g, l1, l2, perm, cap, rho,
                                                 mpt, beta, violation, cross, gram, gram_hat, err);
}

tm_status tm__cpu_mu_update(void *ctx, const struct tm_bmat *m, const struct tm_bmat *numer,
                            const struct tm_bmat *denom, const double *denom_row, double l1,
                            double l2, double zero_below, char *err)
{
    return (cpu_f32(ctx) ? f32_mu_update : f64_mu_update)(ctx, m, numer, denom, denom_row, l1, l2,
                                                          zero_below, err);
}

tm_status tm__cpu_mu_update_fused(void *ctx, const struct tm_bsparse *s, int side,
                                  const struct tm_bmat *mt, const struct tm_bmat *ft,
                                  const struct tm_bmat *g, double l1, double l2, double *cross,
                                  const struct tm_bmat *gram, char *err)
{
    return (cpu_f32(ctx) ? f32_mu_update_fused : f64_mu_update_fused)(ctx, s, side, mt, ft, g, l1,
                                                                      l2, cross, gram, err);
}

tm_status tm__cpu_pgd_update(void *ctx, const struct tm_bmat *m, const struct tm_bmat *mg,
                             const struct tm_bmat *xht, double lr, double penalty, double mu,
                             char *err)
{
    return (cpu_f32(ctx) ? f32_pgd_update : f64_pgd_update)(ctx, m, mg, xht, lr, penalty, mu, err);
}

tm_status tm__cpu_kl_spmm(void *ctx, const struct tm_bsparse *s, int trans, const struct tm_bmat *p,
                          const struct tm_bmat *q, double eps, const struct tm_bmat *c, char *err)
{
    return (cpu_f32(ctx) ? f32_kl_spmm : f64_kl_spmm)(ctx, s, trans, p, q, eps, c, err);
}

tm_status tm__cpu_kl_sum(void *ctx, const struct tm_bsparse *s, const struct tm_bmat *w,
                         const struct tm_bmat *ht, double eps, double *out, char *err)
{
    return (cpu_f32(ctx) ? f32_kl_sum : f64_kl_sum)(ctx, s, w, ht, eps, out, err);
}
