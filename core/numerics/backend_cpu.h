/*
 * backend_cpu.h - the CPU implementation of backend.h: OpenBLAS (cblas) for
 * GEMM/SYRK, LAPACKE for QR, LU and gesdd, and its own loops for the sparse
 * products and the NMF updates. Implemented in core/numerics/cpu/ (one file
 * per kind of op, cpu_internal.h says which); this header stays beside
 * backend.h, where the backend's users look for it.
 *
 * Precision: the context's dtype, float64 by default (TM_DTYPE_AUTO) or
 * float32 on request. A float32 context is the CPU's stand-in for the CUDA
 * backend: its matrices, products (sgemm, its own sparse kernels) and
 * factorizations (LAPACKE_s*) are float32, and its reductions (dot, norms,
 * sums, the HALS violation, the KL row dots and sum) accumulate in double,
 * as the CUDA backend's do. Every kernel is written once and compiled for
 * both types (cpu_real.h).
 * Threads: core never calls openblas_set_num_threads; the process sets
 * OpenBLAS's thread count once at start-up (server/, or OPENBLAS_NUM_THREADS)
 * so that BLAS threads and worker threads do not oversubscribe the cores.
 * The backend's own loops run on a team of tm_backend_config.n_threads
 * threads (team.h) that a context starts once and stops when destroyed
 * (idle, they sleep after a short spin), over a fixed partition of the
 * rows, so results (including the summed scalars) are bit-identical for any
 * thread count (at a given OpenBLAS thread count: with more than one, the
 * tall dense products are OpenBLAS's own, not cut into row chunks). All ops
 * are synchronous.
 * Thread-safety: as backend.h (a context has one owner at a time).
 */
#ifndef TM_CORE_NUMERICS_BACKEND_CPU_H
#define TM_CORE_NUMERICS_BACKEND_CPU_H

#include "core/numerics/backend.h"

/* Also reachable as tm_backend_cpu() from backend.h. */
extern const struct tm_backend_ops tm__backend_cpu_ops;

#endif
