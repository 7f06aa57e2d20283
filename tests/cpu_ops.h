/*
 * cpu_ops.h - the CPU backend as the SVD and NMF tests hand it to core:
 * whole, or without its optional ops (fused updates, adopting host memory),
 * which is what core gets from a backend that lacks them (the CUDA one), so
 * that those paths are tested on the CPU too.
 * Thread-safety: none; the tests call it from one thread.
 */
#ifndef TM_TESTS_CPU_OPS_H
#define TM_TESTS_CPU_OPS_H

#include <stddef.h>

#include "core/numerics/backend.h"

static inline const struct tm_backend_ops *tm_test_cpu_ops(int without_optional_ops)
{
    static struct tm_backend_ops plain;
    if (!without_optional_ops)
        return tm_backend_cpu();
    plain = *tm_backend_cpu();
    plain.gram_spmm = NULL;
    plain.gram_spmm_f32 = NULL;
    plain.hals_sweep_fused = NULL;
    plain.hals_inner_fused = NULL;
    plain.mu_update_fused = NULL;
    plain.mat_adopt = NULL;
    plain.mat_release = NULL;
    return &plain;
}

#endif
