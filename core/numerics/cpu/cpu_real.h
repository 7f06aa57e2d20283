/*
 * cpu_real.h - the element type of the CPU backend's typed code. The
 * kernels are written once, in templates (cpu_*_t.h), and compiled once per
 * element type by cpu_both.h, which sets CPU_REAL to 64 or 32 and includes
 * this header, then the template: as BLAS's and LAPACK's s/d routines come
 * from one source.
 * This header (re)defines, for that element type:
 *   real_t     the element type, double or float
 *   vreal      4 of them in a vector register; vmask, a mask of 4 lanes
 *   VMASK_ABS  the mask that clears a lane's sign bit
 *   TO_V4D(v)  a vreal as 4 doubles: the accumulators of the reductions,
 *              which are double for both types, as the CUDA backend's are
 *   R(name)    the name for this type: f64_name or f32_name
 *   BLAS(n), LAPACK(n)  cblas_dn / cblas_sn, LAPACKE_dn / LAPACKE_sn
 * Included with CPU_REAL undefined, it clears them (after a file's last
 * template). No include guard: it is meant to be included again.
 */
#undef real_t
#undef vreal
#undef vmask
#undef VMASK_ABS
#undef TO_V4D
#undef R
#undef BLAS
#undef LAPACK

#if !defined(CPU_REAL)
/* cleared */
#elif CPU_REAL == 64
#define real_t double
#define vreal v4d
#define vmask v4i
#define VMASK_ABS INT64_MAX
#define TO_V4D(v) (v)
#define R(name) f64_##name
#define BLAS(name) cblas_d##name
#define LAPACK(name) LAPACKE_d##name
#elif CPU_REAL == 32
#define real_t float
#define vreal v4f
#define vmask v4fi
#define VMASK_ABS INT32_MAX
#define TO_V4D(v) __builtin_convertvector((v), v4d)
#define R(name) f32_##name
#define BLAS(name) cblas_s##name
#define LAPACK(name) LAPACKE_s##name
#else
#error "CPU_REAL must be 64 or 32"
#endif
