/*
 * cuda_backend.cu - the CUDA implementation of core/numerics/backend.h, built as the
 * plugin libtopicd_cuda.so (see gpu/plugin.h): cuSPARSE SpMM (generic API)
 * on X and its stored transpose, cuBLAS GEMM/SYRK/GEAM, cuSOLVER
 * geqrf/orgqr/getrf/gesvd, and this file's own kernels for the elementwise
 * NMF updates and the reductions.
 *
 * Choices, all on the side of obviously correct over fastest:
 * - One context = one device, one stream, one cuBLAS, cuSPARSE and cuSOLVER
 *   handle, one element type (float32 by default, float64 on request).
 * - Reductions (dot, norms, sums, the HALS violation, the KL sum) accumulate
 *   in double, per block in a fixed tree, then over a fixed number of blocks
 *   in a fixed order: the same inputs give the same bits on every run.
 * - Only the transposed product X^T B uses the stored CSR of X^T, so every
 *   SpMM is non-transposed CSR (cuSPARSE's deterministic case).
 * - Host<->device copies happen in upload/download/sparse_upload, for the
 *   small host arrays an op takes (k scales, a permutation, a denominator
 *   row) and for the scalars and small factors an op returns.
 * - Scratch memory (solver workspaces, temporaries of svd_small, SpMM
 *   buffers) is one buffer per context that grows on demand and is kept.
 * Every CUDA, cuBLAS, cuSPARSE and cuSOLVER call is checked; failures come
 * back as TM_ENOMEM (allocation) or TM_EDEVICE with the library's message.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <cusparse.h>

#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "gpu/plugin.h"

namespace
{

const int RED_BLOCKS = 256;  /* blocks of every fixed-grid reduction */
const int RED_THREADS = 256; /* threads per block; a power of two */
const int EW_THREADS = 256;  /* threads per block of elementwise kernels */

struct cctx {
    int device;
    int f64;
    size_t es;
    cudaStream_t stream;
    cublasHandle_t blas;
    cusparseHandle_t sparse;
    cusolverDnHandle_t solver;
    void *work; /* scratch, grows on demand; freed with the corpus (op_sparse_free) */
    size_t work_bytes;
    int pools;   /* matrices come from the stream-ordered allocator (cudaMallocAsync) */
    double *red; /* RED_BLOCKS partials + results of reductions */
    size_t red_n;
    int *info; /* cuSOLVER's devInfo */
};

} // namespace

/* The uploaded corpus: CSR of X (m x n) and of X^T (n x m), 32-bit indices. */
struct tm_bsparse {
    int64_t m, n, nnz;
    int *x_ptr, *x_ind, *t_ptr, *t_ind;
    void *x_val, *t_val;
    void *r_val; /* nnz values of the KL ratio, in X's or X^T's pattern */
    cusparseSpMatDescr_t dx, dt, dxr, dtr;
};

namespace
{

tm_status errf(char *err, tm_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
tm_status errf(char *err, tm_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, TM_ERR_SIZE, fmt, ap);
        va_end(ap);
    }
    return st;
}

/*
 * A failed runtime call (an allocation, say) also sets the thread's "last
 * error", which the next cudaGetLastError() after a kernel launch would
 * report as the launch's own failure: every failure path clears it here.
 * Sticky errors (a kernel fault) stay: the runtime returns them again.
 */
void clear_last_error(void)
{
    (void)cudaGetLastError();
}

tm_status cuda_st(cudaError_t e, const char *what, char *err)
{
    clear_last_error();
    tm_status st = (e == cudaErrorMemoryAllocation) ? TM_ENOMEM : TM_EDEVICE;
    return errf(err, st, "CUDA %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

tm_status blas_st(cublasStatus_t s, const char *what, char *err)
{
    clear_last_error();
    tm_status st = (s == CUBLAS_STATUS_ALLOC_FAILED) ? TM_ENOMEM : TM_EDEVICE;
    return errf(err, st, "cuBLAS %s: %s", what, cublasGetStatusString(s));
}

tm_status sparse_st(cusparseStatus_t s, const char *what, char *err)
{
    clear_last_error();
    tm_status st = (s == CUSPARSE_STATUS_ALLOC_FAILED) ? TM_ENOMEM : TM_EDEVICE;
    return errf(err, st, "cuSPARSE %s: %s", what, cusparseGetErrorString(s));
}

const char *solver_msg(cusolverStatus_t s)
{
    switch (s) {
    case CUSOLVER_STATUS_NOT_INITIALIZED:
        return "not initialized";
    case CUSOLVER_STATUS_ALLOC_FAILED:
        return "allocation failed";
    case CUSOLVER_STATUS_INVALID_VALUE:
        return "invalid value";
    case CUSOLVER_STATUS_ARCH_MISMATCH:
        return "architecture mismatch";
    case CUSOLVER_STATUS_EXECUTION_FAILED:
        return "execution failed";
    case CUSOLVER_STATUS_INTERNAL_ERROR:
        return "internal error";
    case CUSOLVER_STATUS_NOT_SUPPORTED:
        return "not supported";
    default:
        return "error";
    }
}

tm_status solver_st(cusolverStatus_t s, const char *what, char *err)
{
    clear_last_error();
    tm_status st = (s == CUSOLVER_STATUS_ALLOC_FAILED) ? TM_ENOMEM : TM_EDEVICE;
    return errf(err, st, "cuSOLVER %s: %s (status %d)", what, solver_msg(s), (int)s);
}

/* Each macro checks one call and, on failure, sets st and jumps to `out`. */
#define CU(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            st = cuda_st(e_, #call, err);                                                          \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
#define BL(call)                                                                                   \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            st = blas_st(s_, #call, err);                                                          \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
#define SP(call)                                                                                   \
    do {                                                                                           \
        cusparseStatus_t s_ = (call);                                                              \
        if (s_ != CUSPARSE_STATUS_SUCCESS) {                                                       \
            st = sparse_st(s_, #call, err);                                                        \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
#define SO(call)                                                                                   \
    do {                                                                                           \
        cusolverStatus_t s_ = (call);                                                              \
        if (s_ != CUSOLVER_STATUS_SUCCESS) {                                                       \
            st = solver_st(s_, #call, err);                                                        \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
/* After a kernel launch: launch errors now, execution errors at a sync. */
#define LAUNCHED() CU(cudaGetLastError())
size_t dtype_size(enum tm_dtype dtype)
{
    return dtype == TM_DTYPE_FLOAT64 ? 8 : 4;
}

unsigned blocks_for(int64_t n, int threads)
{
    int64_t b = (n + threads - 1) / threads;
    if (b < 1)
        b = 1;
    if (b > 65535LL * 8)
        b = 65535LL * 8; /* grid-stride loops cover the rest */
    return (unsigned)b;
}

size_t align_up(size_t x)
{
    return (x + 255) & ~(size_t)255;
}

/* ------------------------------------------------------------------ kernels */

template <typename T> __global__ void k_fill(int64_t rows, int64_t cols, T *A, int64_t ld, T v)
{
    int64_t n = rows * cols;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e % rows, j = e / rows;
        A[i + j * ld] = v;
    }
}

template <typename T>
__global__ void k_scale_cols(int64_t rows, int64_t cols, T *A, int64_t ld, const double *scale)
{
    int64_t n = rows * cols;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e % rows, j = e / rows;
        A[i + j * ld] = (T)((double)A[i + j * ld] * scale[j]);
    }
}

template <typename T>
__global__ void k_axpy(int64_t rows, int64_t cols, T alpha, const T *X, int64_t ldx, T *Y,
                       int64_t ldy)
{
    int64_t n = rows * cols;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e % rows, j = e / rows;
        Y[i + j * ldy] += alpha * X[i + j * ldx];
    }
}

/* Sums v over the block in a fixed tree; the result is valid in thread 0. */
__device__ double block_sum(double v, double *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    return sh[0];
}

template <typename T>
__global__ void k_dot_partial(int64_t rows, int64_t cols, const T *A, int64_t lda, const T *B,
                              int64_t ldb, double *partials)
{
    __shared__ double sh[RED_THREADS];
    double acc = 0.0;
    int64_t n = rows * cols;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e % rows, j = e / rows;
        acc += (double)A[i + j * lda] * (double)B[i + j * ldb];
    }
    double s = block_sum(acc, sh);
    if (threadIdx.x == 0)
        partials[blockIdx.x] = s;
}

/* out[0] = sum of n partials, in a fixed order (one block). */
__global__ void k_sum_partials(const double *partials, int n, double *out)
{
    __shared__ double sh[RED_THREADS];
    double acc = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        acc += partials[i];
    double s = block_sum(acc, sh);
    if (threadIdx.x == 0)
        out[0] = s;
}

/* One block per column: out[j] = sqrt(sum A_ij^2) (norm) or sum A_ij. */
template <typename T>
__global__ void k_col_reduce(int64_t rows, const T *A, int64_t ld, int norm, double *out)
{
    __shared__ double sh[RED_THREADS];
    const T *col = A + (int64_t)blockIdx.x * ld;
    double acc = 0.0;
    for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) {
        double v = (double)col[i];
        acc += norm ? v * v : v;
    }
    double s = block_sum(acc, sh);
    if (threadIdx.x == 0)
        out[blockIdx.x] = norm ? sqrt(s) : s;
}

/* Makes the m x k getrf output its unit lower trapezoidal L. */
template <typename T> __global__ void k_unit_lower(int64_t m, int64_t k, T *A, int64_t ld)
{
    int64_t n = m * k;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e % m, j = e / m;
        if (i == j)
            A[i + j * ld] = (T)1;
        else if (i < j)
            A[i + j * ld] = (T)0;
    }
}

/*
 * A <- P * A for getrf's pivots: getrf gives P^T A0 = L U with the row swaps
 * i <-> ipiv[i] - 1 applied for i = 0..npiv-1, so P = S_0 S_1 ... S_{npiv-1}
 * and P * L applies the swaps in reverse order. One thread per column.
 */
template <typename T>
__global__ void k_unpivot(int npiv, int64_t cols, T *A, int64_t ld, const int *ipiv)
{
    int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (j >= cols)
        return;
    T *col = A + j * ld;
    for (int i = npiv - 1; i >= 0; i--) {
        int p = ipiv[i] - 1;
        if (p != i) {
            T t = col[i];
            col[i] = col[p];
            col[p] = t;
        }
    }
}

/* dst (n x n) = upper triangle of src, zeros below. */
template <typename T>
__global__ void k_upper(int64_t n, const T *src, int64_t lds, T *dst, int64_t ldd)
{
    int64_t total = n * n;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e % n, j = e / n;
        dst[i + j * ldd] = i <= j ? src[i + j * lds] : (T)0;
    }
}

/* C (k x k) upper triangle <- lower triangle. */
template <typename T> __global__ void k_mirror_lower(int64_t k, T *C, int64_t ld)
{
    int64_t total = k * k;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e % k, j = e / k;
        if (i < j)
            C[i + j * ld] = C[j + i * ld];
    }
}

/*
 * One HALS sweep (scikit-learn's _update_cdnmf_fast), one thread per row:
 * rows are independent, the columns are visited in perm order and each
 * update sees the previous ones of its row. Violations are summed per
 * thread, then per block, into partials[blockIdx.x].
 */
template <typename T>
__global__ void k_hals(int64_t rows, int k, T *M, int64_t ldm, const T *G, int64_t ldg,
                       const T *XHt, int64_t ldx, T l1, T l2, const int *perm, double *partials)
{
    __shared__ double sh[RED_THREADS];
    double viol = 0.0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows;
         i += (int64_t)gridDim.x * blockDim.x) {
        for (int s = 0; s < k; s++) {
            int t = perm[s];
            T grad = -(XHt[i + (int64_t)t * ldx] - l1);
            for (int r = 0; r < k; r++)
                grad += G[t + (int64_t)r * ldg] * M[i + (int64_t)r * ldm];
            T mit = M[i + (int64_t)t * ldm];
            grad += l2 * mit;
            T pg = (mit == (T)0) ? (grad < (T)0 ? grad : (T)0) : grad;
            viol += fabs((double)pg);
            T hess = G[t + (int64_t)t * ldg] + l2;
            if (hess != (T)0) {
                T v = mit - grad / hess;
                M[i + (int64_t)t * ldm] = v > (T)0 ? v : (T)0;
            }
        }
    }
    double s = block_sum(viol, sh);
    if (threadIdx.x == 0)
        partials[blockIdx.x] = s;
}

template <typename T>
__global__ void k_mu(int64_t rows, int64_t cols, T *M, int64_t ldm, const T *numer, int64_t ldn,
                     const T *denom, int64_t ldd, const T *denom_row, T l1, T l2, T eps,
                     T zero_below)
{
    int64_t n = rows * cols;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e % rows, j = e / rows;
        T m = M[i + j * ldm];
        T den = denom ? denom[i + j * ldd] : denom_row[j];
        if (l1 > (T)0)
            den += l1;
        if (l2 > (T)0)
            den += l2 * m;
        if (den == (T)0)
            den = eps;
        m *= numer[i + j * ldn] / den;
        M[i + j * ldm] = m < zero_below ? (T)0 : m;
    }
}

template <typename T>
__global__ void k_pgd(int64_t rows, int64_t cols, T *M, int64_t ldm, const T *MG, int64_t ldg,
                      const T *XHt, int64_t ldx, T lr, T penalty, T mu)
{
    int64_t n = rows * cols;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e % rows, j = e / rows;
        T m = M[i + j * ldm];
        T g = MG[i + j * ldg] - XHt[i + j * ldx] + penalty * (m >= mu ? (T)0 : m - mu);
        T v = m - lr * g;
        M[i + j * ldm] = v > (T)0 ? v : (T)0;
    }
}

/* P[i,:] . Q[j,:] for column-major P (ld ldp) and Q (ld ldq), in double. */
template <typename T>
__device__ double row_dot(const T *P, int64_t ldp, int64_t i, const T *Q, int64_t ldq, int64_t j,
                          int k)
{
    double d = 0.0;
    for (int r = 0; r < k; r++)
        d += (double)P[i + (int64_t)r * ldp] * (double)Q[j + (int64_t)r * ldq];
    return d;
}

/* KL ratio on the pattern of a CSR matrix: out[e] = val[e] / max(P[i,:].Q[j,:], eps). One warp
 * per row. The floor is written d < eps ? eps : d, as the CPU backend does, so that a NaN in
 * the factors stays NaN (and the fit fails) instead of becoming eps. e is 64-bit: e + 32 must
 * not overflow when nnz is near INT_MAX. */
template <typename T>
__global__ void k_kl_ratio(int64_t rows, const int *ptr, const int *ind, const T *val, const T *P,
                           int64_t ldp, const T *Q, int64_t ldq, int k, double eps, T *out)
{
    int lane = threadIdx.x & 31;
    int64_t warp = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
    int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t i = warp; i < rows; i += nwarps) {
        for (int64_t e = (int64_t)ptr[i] + lane; e < ptr[i + 1]; e += 32) {
            double d = row_dot(P, ldp, i, Q, ldq, ind[e], k);
            out[e] = (T)((double)val[e] / (d < eps ? eps : d));
        }
    }
}

/* Partial sums of X_ij log(X_ij / max(W[i,:].Ht[j,:], eps)) - X_ij over X_ij > eps; NaN and e
 * as in k_kl_ratio. */
template <typename T>
__global__ void k_kl_sum(int64_t rows, const int *ptr, const int *ind, const T *val, const T *W,
                         int64_t ldw, const T *Ht, int64_t ldh, int k, double eps, double *partials)
{
    __shared__ double sh[RED_THREADS];
    double acc = 0.0;
    int lane = threadIdx.x & 31;
    int64_t warp = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
    int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t i = warp; i < rows; i += nwarps) {
        for (int64_t e = (int64_t)ptr[i] + lane; e < ptr[i + 1]; e += 32) {
            double x = (double)val[e];
            if (x > eps) {
                double d = row_dot(W, ldw, i, Ht, ldh, ind[e], k);
                acc += x * log(x / (d < eps ? eps : d)) - x;
            }
        }
    }
    double s = block_sum(acc, sh);
    if (threadIdx.x == 0)
        partials[blockIdx.x] = s;
}

/* ------------------------------------------------------- typed library calls */

cudaDataType cuda_type(const cctx *c)
{
    return c->f64 ? CUDA_R_64F : CUDA_R_32F;
}

/* Host scalar as the context's type, for alpha/beta arguments. */
union scal {
    float f;
    double d;
};

scal as_scal(const cctx *c, double v)
{
    scal s;
    if (c->f64)
        s.d = v;
    else
        s.f = (float)v;
    return s;
}

/* Makes c->work at least bytes long. Waits for queued work first, as the old
 * buffer may still be in use by it. */
tm_status need_work(cctx *c, size_t bytes, char *err)
{
    tm_status st = TM_OK;
    if (bytes <= c->work_bytes)
        return TM_OK;
    CU(cudaStreamSynchronize(c->stream));
    if (c->work) {
        CU(cudaFree(c->work));
        c->work = NULL;
        c->work_bytes = 0;
    }
    CU(cudaMalloc(&c->work, bytes));
    c->work_bytes = bytes;
out:
    return st;
}

/* Makes c->red hold at least n doubles. The new buffer is allocated before
 * the old one is freed: on failure c->red keeps its old size, never below
 * the RED_BLOCKS + 1 the context starts with, which the reductions use
 * without calling this (a NULL buffer there would be an illegal address,
 * fatal to the process's CUDA context and every job on the device). */
tm_status need_red(cctx *c, size_t n, char *err)
{
    tm_status st = TM_OK;
    double *grown = NULL;
    if (n <= c->red_n)
        return TM_OK;
    CU(cudaMalloc(&grown, n * sizeof(double)));
    CU(cudaStreamSynchronize(c->stream)); /* kernels queued may still read the old one */
    cudaFree(c->red);
    c->red = grown;
    c->red_n = n;
    grown = NULL;
out:
    if (grown)
        cudaFree(grown);
    return st;
}

#define ENTER(c)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = cudaSetDevice((c)->device);                                               \
        if (e_ != cudaSuccess)                                                                     \
            return cuda_st(e_, "cudaSetDevice", err);                                              \
    } while (0)

/* ---------------------------------------------------------------- lifecycle */

void op_destroy(void *ctx);

tm_status op_create(const struct tm_backend_config *cfg, void **out, char *err)
{
    tm_status st = TM_OK;
    cctx *c;
    int n = 0;

    *out = NULL;
    if (cfg->dtype != TM_DTYPE_AUTO && cfg->dtype != TM_DTYPE_FLOAT32 &&
        cfg->dtype != TM_DTYPE_FLOAT64)
        return errf(err, TM_EINVAL, "cuda backend: unknown dtype %d", (int)cfg->dtype);
    {
        cudaError_t e = cudaGetDeviceCount(&n);
        if (e != cudaSuccess) {
            clear_last_error();
            return errf(err, TM_ENODEV, "no usable GPU: %s", cudaGetErrorString(e));
        }
    }
    if (cfg->device < 0 || cfg->device >= n)
        return errf(err, TM_ENODEV, "no GPU %d (this machine has %d)", cfg->device, n);
    c = (cctx *)calloc(1, sizeof(*c));
    if (!c)
        return errf(err, TM_ENOMEM, "cuda backend: out of host memory");
    c->device = cfg->device;
    c->f64 = cfg->dtype == TM_DTYPE_FLOAT64;
    c->es = c->f64 ? 8 : 4;
    CU(cudaSetDevice(c->device));
    if (cudaDeviceGetAttribute(&c->pools, cudaDevAttrMemoryPoolsSupported, c->device) !=
        cudaSuccess) {
        c->pools = 0;
        clear_last_error();
    }
    CU(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    BL(cublasCreate(&c->blas));
    BL(cublasSetStream(c->blas, c->stream));
    /* No TF32 or other reduced-precision shortcuts in float32 products. */
    BL(cublasSetMathMode(c->blas, CUBLAS_PEDANTIC_MATH));
    SP(cusparseCreate(&c->sparse));
    SP(cusparseSetStream(c->sparse, c->stream));
    SO(cusolverDnCreate(&c->solver));
    SO(cusolverDnSetStream(c->solver, c->stream));
    CU(cudaMalloc(&c->info, sizeof(int)));
    TM_TRY(need_red(c, RED_BLOCKS + 1, err));
    *out = c;
    return TM_OK;
out:
    op_destroy(c);
    return st;
}

void op_destroy(void *ctx)
{
    cctx *c = (cctx *)ctx;
    if (!c)
        return;
    cudaSetDevice(c->device);
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    cudaFree(c->work);
    cudaFree(c->red);
    cudaFree(c->info);
    if (c->solver)
        cusolverDnDestroy(c->solver);
    if (c->sparse)
        cusparseDestroy(c->sparse);
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    clear_last_error();
    free(c);
}

tm_status op_sync(void *ctx, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    ENTER(c);
    CU(cudaStreamSynchronize(c->stream));
out:
    return st;
}

size_t op_elem_size(void *ctx)
{
    return ((cctx *)ctx)->es;
}

/* Matches cudaMalloc's granularity closely enough for admission control. */
size_t op_mat_bytes(enum tm_dtype dtype, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0)
        return 0;
    return align_up((size_t)rows * (size_t)cols * dtype_size(dtype));
}

/*
 * The corpus on the device: X and X^T (values and 32-bit indices), the KL
 * ratio values, the SpMM buffer (assumed no larger than one value array), and
 * the context's scratch for up to k + 10 columns of the larger dimension
 * (svd_small's transposed copy and product) plus the reductions.
 */
size_t op_sparse_bytes(enum tm_dtype dtype, int64_t rows, int64_t cols, int64_t nnz, int64_t k)
{
    if (rows > INT_MAX - 1 || cols > INT_MAX - 1 || nnz > INT_MAX)
        return SIZE_MAX; /* cuSPARSE's 32-bit indices, as op_sparse_upload requires */
    size_t es = dtype_size(dtype), big = (size_t)(rows > cols ? rows : cols);
    size_t kk = (size_t)(k > 0 ? k : 0) + 10;
    size_t b = 0;
    b += align_up((size_t)(rows + 1) * 4) + align_up((size_t)nnz * 4) + align_up((size_t)nnz * es);
    b += align_up((size_t)(cols + 1) * 4) + align_up((size_t)nnz * 4) + align_up((size_t)nnz * es);
    b += align_up((size_t)nnz * es);                        /* KL ratio */
    b += align_up((size_t)nnz * es) + (1u << 20);           /* SpMM buffer */
    b += 2 * big * kk * es + 4 * kk * kk * es + (4u << 20); /* scratch */
    return b;
}

/* ------------------------------------------------------------------- memory */

tm_status op_mat_alloc(void *ctx, int64_t rows, int64_t cols, struct tm_bmat *out, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    void *p = NULL;
    size_t bytes = 0;
    memset(out, 0, sizeof(*out)); /* before ENTER, which may return: out is never left stale */
    ENTER(c);
    out->rows = rows;
    out->cols = cols;
    out->ld = rows > 0 ? rows : 1;
    out->elem_size = c->es;
    if (rows <= 0 || cols <= 0)
        return TM_OK;
    bytes = (size_t)rows * (size_t)cols * c->es;
    if (c->pools)
        CU(cudaMallocAsync(&p, bytes, c->stream));
    else
        CU(cudaMalloc(&p, bytes));
    CU(cudaMemsetAsync(p, 0, bytes, c->stream));
    out->data = p;
    return TM_OK;
out:
    if (p && c->pools)
        cudaFreeAsync(p, c->stream);
    else if (p)
        cudaFree(p);
    if (st == TM_ENOMEM)
        errf(err, TM_ENOMEM, "GPU out of memory allocating a %lld x %lld matrix (%.1f MiB)",
             (long long)rows, (long long)cols, (double)bytes / 1048576.0);
    return st;
}

void op_mat_free(void *ctx, struct tm_bmat *m)
{
    cctx *c = (cctx *)ctx;
    if (m->data) {
        cudaSetDevice(c->device);
        /* Every op on m was queued on c->stream, so a free ordered after
         * them on that stream is safe, and waits for nothing: cudaFree would
         * synchronise the whole device, and so stall the other slots' jobs.
         * The pool gives the memory back at the stream's next
         * synchronisation (its release threshold stays 0), where
         * cudaMemGetInfo, and so admission, sees it. */
        if (c->pools)
            cudaFreeAsync(m->data, c->stream);
        else
            cudaFree(m->data);
        clear_last_error(); /* nothing to report from a free */
    }
    memset(m, 0, sizeof(*m));
}

tm_status op_upload(void *ctx, const double *src, int64_t ld_src, const struct tm_bmat *dst,
                    char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    void *host = NULL;
    int64_t r = dst->rows, k = dst->cols, i, j;
    ENTER(c);
    if (r <= 0 || k <= 0)
        return TM_OK;
    host = malloc((size_t)r * (size_t)k * c->es);
    if (!host)
        return errf(err, TM_ENOMEM, "cuda upload: out of host memory");
    for (j = 0; j < k; j++)
        for (i = 0; i < r; i++) {
            double v = src[i + j * ld_src];
            if (c->f64)
                ((double *)host)[i + j * r] = v;
            else
                ((float *)host)[i + j * r] = (float)v;
        }
    CU(cudaMemcpy2DAsync(dst->data, (size_t)dst->ld * c->es, host, (size_t)r * c->es,
                         (size_t)r * c->es, (size_t)k, cudaMemcpyHostToDevice, c->stream));
    /* host is freed below: wait until the copy has read it. */
    CU(cudaStreamSynchronize(c->stream));
out:
    free(host);
    return st;
}

tm_status op_download(void *ctx, const struct tm_bmat *src, double *dst, int64_t ld_dst, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    void *host = NULL;
    int64_t r = src->rows, k = src->cols, i, j;
    ENTER(c);
    if (r <= 0 || k <= 0)
        return TM_OK;
    host = malloc((size_t)r * (size_t)k * c->es);
    if (!host)
        return errf(err, TM_ENOMEM, "cuda download: out of host memory");
    CU(cudaMemcpy2DAsync(host, (size_t)r * c->es, src->data, (size_t)src->ld * c->es,
                         (size_t)r * c->es, (size_t)k, cudaMemcpyDeviceToHost, c->stream));
    CU(cudaStreamSynchronize(c->stream));
    for (j = 0; j < k; j++)
        for (i = 0; i < r; i++)
            dst[i + j * ld_dst] =
                c->f64 ? ((double *)host)[i + j * r] : (double)((float *)host)[i + j * r];
out:
    free(host);
    return st;
}

/* Copies n host values into a freshly allocated device array of the context's type. */
/* Copies bytes from pageable host memory to the device on the context's
 * stream and waits: every kernel runs on that non-blocking stream, which a
 * plain cudaMemcpy (legacy stream, and for pageable memory possibly
 * returning before the DMA ends) does not order against. src may be freed
 * on return. */
tm_status copy_to_device(cctx *c, void *dst, const void *src, size_t bytes, char *err)
{
    tm_status st = TM_OK;
    CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
    CU(cudaStreamSynchronize(c->stream));
out:
    return st;
}

tm_status upload_values(cctx *c, const double *v, int64_t n, void **out, char *err)
{
    tm_status st = TM_OK;
    void *host = malloc((size_t)(n > 0 ? n : 1) * c->es);
    *out = NULL;
    if (!host)
        return errf(err, TM_ENOMEM, "cuda: out of host memory");
    for (int64_t i = 0; i < n; i++) {
        if (c->f64)
            ((double *)host)[i] = v[i];
        else
            ((float *)host)[i] = (float)v[i];
    }
    CU(cudaMalloc(out, (size_t)(n > 0 ? n : 1) * c->es));
    TM_TRY(copy_to_device(c, *out, host, (size_t)n * c->es, err));
out:
    free(host);
    return st;
}

void op_sparse_free(void *ctx, struct tm_bsparse *X);

tm_status op_sparse_upload(void *ctx, const struct tm_csr *X, struct tm_bsparse **out, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    struct tm_bsparse *s = NULL;
    int *h_xptr = NULL, *h_xind = NULL, *h_tptr = NULL, *h_tind = NULL;
    double *h_tval = NULL;
    int64_t m = X->n_rows, n = X->n_cols, nnz = tm_csr_nnz(X), i, e;
    cudaDataType vt = cuda_type(c);

    ENTER(c);
    *out = NULL;
    if (m > INT_MAX - 1 || n > INT_MAX - 1 || nnz > INT_MAX)
        return errf(err, TM_ETOOBIG,
                    "cuda backend: matrix %lld x %lld with %lld non-zeros exceeds 32-bit indices",
                    (long long)m, (long long)n, (long long)nnz);
    s = (struct tm_bsparse *)calloc(1, sizeof(*s));
    h_xptr = (int *)malloc((size_t)(m + 1) * sizeof(int));
    h_xind = (int *)malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int));
    h_tptr = (int *)calloc((size_t)(n + 2), sizeof(int));
    h_tind = (int *)malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int));
    h_tval = (double *)malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(double));
    if (!s || !h_xptr || !h_xind || !h_tptr || !h_tind || !h_tval) {
        st = errf(err, TM_ENOMEM, "cuda sparse upload: out of host memory");
        goto out;
    }
    s->m = m;
    s->n = n;
    s->nnz = nnz;
    for (i = 0; i <= m; i++)
        h_xptr[i] = (int)X->indptr[i];
    for (e = 0; e < nnz; e++)
        h_xind[e] = X->indices[e];
    /* X^T by counting sort: rows of X^T are terms, their columns documents,
     * visited in increasing document order so indices come out sorted. */
    for (e = 0; e < nnz; e++)
        h_tptr[X->indices[e] + 1]++;
    for (i = 0; i < n; i++)
        h_tptr[i + 1] += h_tptr[i];
    {
        int *next = h_tptr + 0; /* reuse as insertion cursor, restored below */
        for (i = 0; i < m; i++)
            for (e = X->indptr[i]; e < X->indptr[i + 1]; e++) {
                int col = X->indices[e];
                int pos = next[col]++;
                h_tind[pos] = (int)i;
                h_tval[pos] = X->data[e];
            }
        for (i = n; i > 0; i--)
            h_tptr[i] = h_tptr[i - 1];
        h_tptr[0] = 0;
    }

    CU(cudaMalloc(&s->x_ptr, (size_t)(m + 1) * sizeof(int)));
    CU(cudaMalloc(&s->x_ind, (size_t)(nnz > 0 ? nnz : 1) * sizeof(int)));
    CU(cudaMalloc(&s->t_ptr, (size_t)(n + 1) * sizeof(int)));
    CU(cudaMalloc(&s->t_ind, (size_t)(nnz > 0 ? nnz : 1) * sizeof(int)));
    CU(cudaMalloc(&s->r_val, (size_t)(nnz > 0 ? nnz : 1) * c->es));
    TM_TRY(copy_to_device(c, s->x_ptr, h_xptr, (size_t)(m + 1) * sizeof(int), err));
    TM_TRY(copy_to_device(c, s->x_ind, h_xind, (size_t)nnz * sizeof(int), err));
    TM_TRY(copy_to_device(c, s->t_ptr, h_tptr, (size_t)(n + 1) * sizeof(int), err));
    TM_TRY(copy_to_device(c, s->t_ind, h_tind, (size_t)nnz * sizeof(int), err));
    TM_TRY(upload_values(c, X->data, nnz, &s->x_val, err));
    TM_TRY(upload_values(c, h_tval, nnz, &s->t_val, err));

    SP(cusparseCreateCsr(&s->dx, m, n, nnz, s->x_ptr, s->x_ind, s->x_val, CUSPARSE_INDEX_32I,
                         CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, vt));
    SP(cusparseCreateCsr(&s->dt, n, m, nnz, s->t_ptr, s->t_ind, s->t_val, CUSPARSE_INDEX_32I,
                         CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, vt));
    SP(cusparseCreateCsr(&s->dxr, m, n, nnz, s->x_ptr, s->x_ind, s->r_val, CUSPARSE_INDEX_32I,
                         CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, vt));
    SP(cusparseCreateCsr(&s->dtr, n, m, nnz, s->t_ptr, s->t_ind, s->r_val, CUSPARSE_INDEX_32I,
                         CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, vt));
    *out = s;
    s = NULL;
out:
    if (s)
        op_sparse_free(c, s);
    free(h_tval);
    free(h_tind);
    free(h_tptr);
    free(h_xind);
    free(h_xptr);
    return st;
}

void op_sparse_free(void *ctx, struct tm_bsparse *s)
{
    cctx *c = (cctx *)ctx;
    if (!s)
        return;
    cudaSetDevice(c->device);
    cudaStreamSynchronize(c->stream);
    if (s->dx)
        cusparseDestroySpMat(s->dx);
    if (s->dt)
        cusparseDestroySpMat(s->dt);
    if (s->dxr)
        cusparseDestroySpMat(s->dxr);
    if (s->dtr)
        cusparseDestroySpMat(s->dtr);
    cudaFree(s->x_ptr);
    cudaFree(s->x_ind);
    cudaFree(s->x_val);
    cudaFree(s->t_ptr);
    cudaFree(s->t_ind);
    cudaFree(s->t_val);
    cudaFree(s->r_val);
    /* The scratch grew for this corpus's fit, whose admission counted it
     * (op_sparse_bytes); a context the manager keeps between jobs must not
     * hold it outside any job's promise. The stream was synchronised above. */
    cudaFree(c->work);
    c->work = NULL;
    c->work_bytes = 0;
    clear_last_error();
    free(s);
}

/* ----------------------------------------------------------------- products */

tm_status fill_mat(cctx *c, const struct tm_bmat *A, double v, char *err);
tm_status scale_all(cctx *c, const struct tm_bmat *C, double beta, char *err);

/* C = alpha * A * B + beta * C for a CSR descriptor A (rows x cols). */
tm_status spmm_desc(cctx *c, cusparseSpMatDescr_t A, double alpha, const struct tm_bmat *B,
                    double beta, const struct tm_bmat *C, char *err)
{
    tm_status st = TM_OK;
    cusparseDnMatDescr_t db = NULL, dc = NULL;
    size_t need = 0;
    scal a = as_scal(c, alpha), b = as_scal(c, beta);
    cudaDataType vt = cuda_type(c);

    if (C->rows <= 0 || C->cols <= 0)
        return TM_OK;
    if (beta == 0.0)
        TM_TRY(fill_mat(c, C, 0.0, err)); /* so that NaN in C never leaks through 0 * C */
    if (B->rows <= 0) {                   /* op(X) has no columns: C = beta C */
        if (beta != 0.0 && beta != 1.0)
            TM_TRY(scale_all(c, C, beta, err));
        return TM_OK;
    }
    SP(cusparseCreateDnMat(&db, B->rows, B->cols, B->ld, B->data, vt, CUSPARSE_ORDER_COL));
    SP(cusparseCreateDnMat(&dc, C->rows, C->cols, C->ld, C->data, vt, CUSPARSE_ORDER_COL));
    SP(cusparseSpMM_bufferSize(c->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                               CUSPARSE_OPERATION_NON_TRANSPOSE, &a, A, db, &b, dc, vt,
                               CUSPARSE_SPMM_ALG_DEFAULT, &need));
    TM_TRY(need_work(c, need > 0 ? need : 1, err));
    SP(cusparseSpMM(c->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE,
                    &a, A, db, &b, dc, vt, CUSPARSE_SPMM_ALG_DEFAULT, c->work));
out:
    if (dc)
        cusparseDestroyDnMat(dc);
    if (db)
        cusparseDestroyDnMat(db);
    return st;
}

tm_status op_spmm(void *ctx, const struct tm_bsparse *X, int trans, double alpha,
                  const struct tm_bmat *B, double beta, const struct tm_bmat *C, char *err)
{
    cctx *c = (cctx *)ctx;
    ENTER(c);
    return spmm_desc(c, trans ? X->dt : X->dx, alpha, B, beta, C, err);
}

tm_status gemm_raw(cctx *c, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                   int64_t k, double alpha, const void *A, int64_t lda, const void *B, int64_t ldb,
                   double beta, void *C, int64_t ldc, char *err)
{
    tm_status st = TM_OK;
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX ||
        ldc > INT_MAX)
        return errf(err, TM_ETOOBIG, "cuda gemm: dimension exceeds 32 bits");
    if (c->f64) {
        double a = alpha, b = beta;
        BL(cublasDgemm(c->blas, ta, tb, (int)m, (int)n, (int)k, &a, (const double *)A, (int)lda,
                       (const double *)B, (int)ldb, &b, (double *)C, (int)ldc));
    } else {
        float a = (float)alpha, b = (float)beta;
        BL(cublasSgemm(c->blas, ta, tb, (int)m, (int)n, (int)k, &a, (const float *)A, (int)lda,
                       (const float *)B, (int)ldb, &b, (float *)C, (int)ldc));
    }
out:
    return st;
}

tm_status op_gemm(void *ctx, int transa, int transb, double alpha, const struct tm_bmat *A,
                  const struct tm_bmat *B, double beta, const struct tm_bmat *C, char *err)
{
    cctx *c = (cctx *)ctx;
    int64_t inner = transa ? A->rows : A->cols;
    ENTER(c);
    if (C->rows <= 0 || C->cols <= 0)
        return TM_OK;
    if (inner <= 0)
        return beta == 0.0 ? fill_mat(c, C, 0.0, err)
                           : (beta == 1.0 ? TM_OK : scale_all(c, C, beta, err));
    return gemm_raw(c, transa ? CUBLAS_OP_T : CUBLAS_OP_N, transb ? CUBLAS_OP_T : CUBLAS_OP_N,
                    C->rows, C->cols, inner, alpha, A->data, A->ld, B->data, B->ld, beta, C->data,
                    C->ld, err);
}

tm_status op_gram(void *ctx, const struct tm_bmat *A, const struct tm_bmat *C, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    int64_t k = A->cols;
    ENTER(c);
    if (k <= 0)
        return TM_OK;
    if (A->rows <= 0)
        return fill_mat(c, C, 0.0, err);
    if (k > INT_MAX || A->rows > INT_MAX || A->ld > INT_MAX)
        return errf(err, TM_ETOOBIG, "cuda gram: dimension exceeds 32 bits");
    if (c->f64) {
        double one = 1.0, zero = 0.0;
        BL(cublasDsyrk(c->blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, (int)k, (int)A->rows, &one,
                       (const double *)A->data, (int)A->ld, &zero, (double *)C->data, (int)C->ld));
        k_mirror_lower<double><<<blocks_for(k * k, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            k, (double *)C->data, C->ld);
    } else {
        float one = 1.0f, zero = 0.0f;
        BL(cublasSsyrk(c->blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, (int)k, (int)A->rows, &one,
                       (const float *)A->data, (int)A->ld, &zero, (float *)C->data, (int)C->ld));
        k_mirror_lower<float><<<blocks_for(k * k, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            k, (float *)C->data, C->ld);
    }
    LAUNCHED();
out:
    return st;
}

/* ----------------------------------------------------------- factorizations */

/* Carves aligned pieces out of c->work. */
struct carver {
    char *base;
    size_t off;
};

void *carve(carver *cv, size_t bytes)
{
    void *p = cv->base + cv->off;
    cv->off += align_up(bytes > 0 ? bytes : 1);
    return p;
}

/* A (m x n, m >= n) <- Q of its thin QR. tau: n elements of device scratch
 * not overlapping work (lwork elements). */
/* Reads the devInfo of the cuSOLVER call just queued (waiting for it): info < 0 is an
 * argument the routine refused, a bug here; info > 0 a numerical failure, unless the caller
 * accepts it (getrf's exactly zero pivot). */
tm_status solver_info(cctx *c, const char *what, int positive_ok, char *err)
{
    tm_status st = TM_OK;
    int info = 0;
    CU(cudaMemcpyAsync(&info, c->info, sizeof(int), cudaMemcpyDeviceToHost, c->stream));
    CU(cudaStreamSynchronize(c->stream));
    if (info < 0)
        return errf(err, TM_ELAPACK, "cuda %s: argument %d refused", what, -info);
    if (info > 0 && !positive_ok)
        return errf(err, TM_ELAPACK, "cuda %s failed (info %d)", what, info);
out:
    return st;
}

tm_status qr_in_place(cctx *c, int m, int n, void *A, int lda, char *err)
{
    tm_status st = TM_OK;
    int lw1 = 0, lw2 = 0, lw;
    carver cv;
    void *tau, *work;
    if (c->f64) {
        SO(cusolverDnDgeqrf_bufferSize(c->solver, m, n, (double *)A, lda, &lw1));
        SO(cusolverDnDorgqr_bufferSize(c->solver, m, n, n, (double *)A, lda, (double *)A, &lw2));
    } else {
        SO(cusolverDnSgeqrf_bufferSize(c->solver, m, n, (float *)A, lda, &lw1));
        SO(cusolverDnSorgqr_bufferSize(c->solver, m, n, n, (float *)A, lda, (float *)A, &lw2));
    }
    lw = lw1 > lw2 ? lw1 : lw2;
    TM_TRY(need_work(c, align_up((size_t)n * c->es) + align_up((size_t)lw * c->es) + 256, err));
    cv = {(char *)c->work, 0};
    tau = carve(&cv, (size_t)n * c->es);
    work = carve(&cv, (size_t)lw * c->es);
    if (c->f64) {
        SO(cusolverDnDgeqrf(c->solver, m, n, (double *)A, lda, (double *)tau, (double *)work, lw,
                            c->info));
        TM_TRY(solver_info(c, "geqrf", 0, err));
        SO(cusolverDnDorgqr(c->solver, m, n, n, (double *)A, lda, (const double *)tau,
                            (double *)work, lw, c->info));
        TM_TRY(solver_info(c, "orgqr", 0, err));
    } else {
        SO(cusolverDnSgeqrf(c->solver, m, n, (float *)A, lda, (float *)tau, (float *)work, lw,
                            c->info));
        TM_TRY(solver_info(c, "geqrf", 0, err));
        SO(cusolverDnSorgqr(c->solver, m, n, n, (float *)A, lda, (const float *)tau, (float *)work,
                            lw, c->info));
        TM_TRY(solver_info(c, "orgqr", 0, err));
    }
out:
    return st;
}

tm_status op_orth_qr(void *ctx, const struct tm_bmat *A, char *err)
{
    cctx *c = (cctx *)ctx;
    ENTER(c);
    if (A->rows <= 0 || A->cols <= 0)
        return TM_OK;
    if (A->rows > INT_MAX || A->ld > INT_MAX)
        return errf(err, TM_ETOOBIG, "cuda orth_qr: dimension exceeds 32 bits");
    if (A->rows < A->cols)
        return errf(err, TM_EINVAL, "cuda orth_qr: needs rows >= cols");
    return qr_in_place(c, (int)A->rows, (int)A->cols, A->data, (int)A->ld, err);
}

tm_status op_orth_lu(void *ctx, const struct tm_bmat *A, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    int m, k, lw = 0;
    carver cv;
    void *work;
    int *ipiv;
    ENTER(c);
    if (A->rows <= 0 || A->cols <= 0)
        return TM_OK;
    if (A->rows > INT_MAX || A->ld > INT_MAX)
        return errf(err, TM_ETOOBIG, "cuda orth_lu: dimension exceeds 32 bits");
    if (A->rows < A->cols)
        return errf(err, TM_EINVAL, "cuda orth_lu: needs rows >= cols");
    m = (int)A->rows;
    k = (int)A->cols;
    if (c->f64)
        SO(cusolverDnDgetrf_bufferSize(c->solver, m, k, (double *)A->data, (int)A->ld, &lw));
    else
        SO(cusolverDnSgetrf_bufferSize(c->solver, m, k, (float *)A->data, (int)A->ld, &lw));
    TM_TRY(
        need_work(c, align_up((size_t)k * sizeof(int)) + align_up((size_t)lw * c->es) + 256, err));
    cv = {(char *)c->work, 0};
    ipiv = (int *)carve(&cv, (size_t)k * sizeof(int));
    work = carve(&cv, (size_t)lw * c->es);
    /* info > 0 (an exactly zero pivot in U) is no error here: L is still
     * the factor scipy.linalg.lu(permute_l=True) returns. */
    if (c->f64) {
        SO(cusolverDnDgetrf(c->solver, m, k, (double *)A->data, (int)A->ld, (double *)work, ipiv,
                            c->info));
        TM_TRY(solver_info(c, "getrf", 1, err));
        k_unit_lower<double><<<blocks_for((int64_t)m * k, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            m, k, (double *)A->data, A->ld);
        LAUNCHED();
        k_unpivot<double>
            <<<blocks_for(k, 64), 64, 0, c->stream>>>(k, k, (double *)A->data, A->ld, ipiv);
    } else {
        SO(cusolverDnSgetrf(c->solver, m, k, (float *)A->data, (int)A->ld, (float *)work, ipiv,
                            c->info));
        TM_TRY(solver_info(c, "getrf", 1, err));
        k_unit_lower<float><<<blocks_for((int64_t)m * k, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            m, k, (float *)A->data, A->ld);
        LAUNCHED();
        k_unpivot<float>
            <<<blocks_for(k, 64), 64, 0, c->stream>>>(k, k, (float *)A->data, A->ld, ipiv);
    }
    LAUNCHED();
out:
    return st;
}

/* dst (c x r) = src^T (src r x c) with cuBLAS geam. */
tm_status transpose(cctx *c, int64_t r, int64_t cols, const void *src, int64_t lds, void *dst,
                    int64_t ldd, char *err)
{
    tm_status st = TM_OK;
    if (c->f64) {
        double one = 1.0, zero = 0.0;
        BL(cublasDgeam(c->blas, CUBLAS_OP_T, CUBLAS_OP_T, (int)cols, (int)r, &one,
                       (const double *)src, (int)lds, &zero, (const double *)src, (int)lds,
                       (double *)dst, (int)ldd));
    } else {
        float one = 1.0f, zero = 0.0f;
        BL(cublasSgeam(c->blas, CUBLAS_OP_T, CUBLAS_OP_T, (int)cols, (int)r, &one,
                       (const float *)src, (int)lds, &zero, (const float *)src, (int)lds,
                       (float *)dst, (int)ldd));
    }
out:
    return st;
}

tm_status copy_2d(cctx *c, int64_t rows, int64_t cols, const void *src, int64_t lds, void *dst,
                  int64_t ldd, char *err)
{
    tm_status st = TM_OK;
    if (rows <= 0 || cols <= 0)
        return TM_OK;
    CU(cudaMemcpy2DAsync(dst, (size_t)ldd * c->es, src, (size_t)lds * c->es, (size_t)rows * c->es,
                         (size_t)cols, cudaMemcpyDeviceToDevice, c->stream));
out:
    return st;
}

/*
 * Thin SVD, A (r x cols) = U diag(s) Vt, p = min(r, cols), by the route
 * LAPACK takes for tall matrices: T = A (or A^T when wide, so T is mt x nt
 * with mt >= nt), T = Q R (geqrf/orgqr), R = Ur S Vrt (gesvd, nt x nt), so
 * T = (Q Ur) S Vrt. For wide A, A = T^T = Vrt^T S (Q Ur)^T.
 * Scratch in c->work: [T copy | R | Ur | Vrt | QUr | S | gesvd work | rwork].
 */
tm_status op_svd_small(void *ctx, const struct tm_bmat *A, const struct tm_bmat *U, double *s,
                       const struct tm_bmat *Vt, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    int64_t r = A->rows, cols = A->cols;
    int wide = r < cols, mt, nt, lwq1 = 0, lwq2 = 0, lws = 0, lw, info = 0;
    size_t bytes;
    carver cv;
    void *T, *R, *Ur, *Vrt, *QUr, *S, *work, *rwork, *tau;
    int64_t ldt;
    double *hs = NULL;

    ENTER(c);
    if (r <= 0 || cols <= 0)
        return TM_OK;
    if (r > INT_MAX || cols > INT_MAX || A->ld > INT_MAX)
        return errf(err, TM_ETOOBIG, "cuda svd_small: dimension exceeds 32 bits");
    mt = (int)(wide ? cols : r);
    nt = (int)(wide ? r : cols);
    ldt = wide ? mt : A->ld;

    if (c->f64) {
        SO(cusolverDnDgeqrf_bufferSize(c->solver, mt, nt, (double *)A->data, (int)ldt, &lwq1));
        SO(cusolverDnDorgqr_bufferSize(c->solver, mt, nt, nt, (double *)A->data, (int)ldt,
                                       (double *)A->data, &lwq2));
        SO(cusolverDnDgesvd_bufferSize(c->solver, nt, nt, &lws));
    } else {
        SO(cusolverDnSgeqrf_bufferSize(c->solver, mt, nt, (float *)A->data, (int)ldt, &lwq1));
        SO(cusolverDnSorgqr_bufferSize(c->solver, mt, nt, nt, (float *)A->data, (int)ldt,
                                       (float *)A->data, &lwq2));
        SO(cusolverDnSgesvd_bufferSize(c->solver, nt, nt, &lws));
    }
    lw = lwq1 > lwq2 ? lwq1 : lwq2;
    lw = lw > lws ? lw : lws;
    bytes = (wide ? align_up((size_t)mt * nt * c->es) : 0) + 4 * align_up((size_t)nt * nt * c->es) +
            align_up((size_t)mt * nt * c->es) + 3 * align_up((size_t)nt * c->es) +
            align_up((size_t)lw * c->es) + 4096;
    TM_TRY(need_work(c, bytes, err));
    cv = {(char *)c->work, 0};
    T = wide ? carve(&cv, (size_t)mt * nt * c->es) : A->data;
    R = carve(&cv, (size_t)nt * nt * c->es);
    Ur = carve(&cv, (size_t)nt * nt * c->es);
    Vrt = carve(&cv, (size_t)nt * nt * c->es);
    QUr = carve(&cv, (size_t)mt * nt * c->es);
    S = carve(&cv, (size_t)nt * c->es);
    tau = carve(&cv, (size_t)nt * c->es);
    rwork = carve(&cv, (size_t)nt * c->es);
    work = carve(&cv, (size_t)lw * c->es);

    if (wide)
        TM_TRY(transpose(c, r, cols, A->data, A->ld, T, ldt, err));
    if (c->f64) {
        SO(cusolverDnDgeqrf(c->solver, mt, nt, (double *)T, (int)ldt, (double *)tau, (double *)work,
                            lw, c->info));
        TM_TRY(solver_info(c, "geqrf", 0, err));
        k_upper<double><<<blocks_for((int64_t)nt * nt, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            nt, (const double *)T, ldt, (double *)R, nt);
        LAUNCHED();
        SO(cusolverDnDorgqr(c->solver, mt, nt, nt, (double *)T, (int)ldt, (const double *)tau,
                            (double *)work, lw, c->info));
        TM_TRY(solver_info(c, "orgqr", 0, err));
        SO(cusolverDnDgesvd(c->solver, 'A', 'A', nt, nt, (double *)R, nt, (double *)S, (double *)Ur,
                            nt, (double *)Vrt, nt, (double *)work, lw, (double *)rwork, c->info));
    } else {
        SO(cusolverDnSgeqrf(c->solver, mt, nt, (float *)T, (int)ldt, (float *)tau, (float *)work,
                            lw, c->info));
        TM_TRY(solver_info(c, "geqrf", 0, err));
        k_upper<float><<<blocks_for((int64_t)nt * nt, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            nt, (const float *)T, ldt, (float *)R, nt);
        LAUNCHED();
        SO(cusolverDnSorgqr(c->solver, mt, nt, nt, (float *)T, (int)ldt, (const float *)tau,
                            (float *)work, lw, c->info));
        TM_TRY(solver_info(c, "orgqr", 0, err));
        SO(cusolverDnSgesvd(c->solver, 'A', 'A', nt, nt, (float *)R, nt, (float *)S, (float *)Ur,
                            nt, (float *)Vrt, nt, (float *)work, lw, (float *)rwork, c->info));
    }
    CU(cudaMemcpyAsync(&info, c->info, sizeof(int), cudaMemcpyDeviceToHost, c->stream));
    CU(cudaStreamSynchronize(c->stream));
    if (info > 0) {
        st = errf(err, TM_ELAPACK, "cuSOLVER gesvd did not converge (%d superdiagonals)", info);
        goto out;
    }
    if (info < 0) {
        st = errf(err, TM_EDEVICE, "cuSOLVER gesvd: parameter %d is invalid", -info);
        goto out;
    }
    /* QUr (mt x nt) = Q Ur */
    TM_TRY(
        gemm_raw(c, CUBLAS_OP_N, CUBLAS_OP_N, mt, nt, nt, 1.0, T, ldt, Ur, nt, 0.0, QUr, mt, err));
    if (!wide) {
        if (U && U->data)
            TM_TRY(copy_2d(c, mt, nt, QUr, mt, U->data, U->ld, err));
        if (Vt && Vt->data)
            TM_TRY(copy_2d(c, nt, nt, Vrt, nt, Vt->data, Vt->ld, err));
    } else {
        if (U && U->data) /* U = Vrt^T (r x r) */
            TM_TRY(transpose(c, nt, nt, Vrt, nt, U->data, U->ld, err));
        if (Vt && Vt->data) /* Vt = QUr^T (r x cols) */
            TM_TRY(transpose(c, mt, nt, QUr, mt, Vt->data, Vt->ld, err));
    }
    hs = (double *)malloc((size_t)nt * sizeof(double));
    if (!hs) {
        st = errf(err, TM_ENOMEM, "cuda svd_small: out of host memory");
        goto out;
    }
    if (c->f64) {
        CU(cudaMemcpyAsync(hs, S, (size_t)nt * sizeof(double), cudaMemcpyDeviceToHost, c->stream));
        CU(cudaStreamSynchronize(c->stream));
        for (int i = 0; i < nt; i++)
            s[i] = hs[i];
    } else {
        float *hf = (float *)hs; /* nt floats fit in nt doubles */
        CU(cudaMemcpyAsync(hf, S, (size_t)nt * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
        CU(cudaStreamSynchronize(c->stream));
        for (int i = nt - 1; i >= 0; i--)
            s[i] = (double)hf[i];
    }
out:
    free(hs);
    return st;
}

/* ------------------------------------------------ elementwise and reductions */

tm_status fill_mat(cctx *c, const struct tm_bmat *A, double v, char *err)
{
    tm_status st = TM_OK;
    int64_t n = A->rows * A->cols;
    if (A->rows <= 0 || A->cols <= 0)
        return TM_OK;
    if (c->f64)
        k_fill<double><<<blocks_for(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            A->rows, A->cols, (double *)A->data, A->ld, v);
    else
        k_fill<float><<<blocks_for(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            A->rows, A->cols, (float *)A->data, A->ld, (float)v);
    LAUNCHED();
out:
    return st;
}

tm_status op_fill(void *ctx, const struct tm_bmat *A, double value, char *err)
{
    cctx *c = (cctx *)ctx;
    ENTER(c);
    return fill_mat(c, A, value, err);
}

tm_status op_copy(void *ctx, const struct tm_bmat *src, const struct tm_bmat *dst, char *err)
{
    cctx *c = (cctx *)ctx;
    ENTER(c);
    return copy_2d(c, src->rows, src->cols, src->data, src->ld, dst->data, dst->ld, err);
}

/* Uploads n host doubles into the reduction buffer (after its first
 * RED_BLOCKS + 1 slots) for a kernel that reads them as double. */
tm_status stage_doubles(cctx *c, const double *v, int64_t n, double **dev, char *err)
{
    tm_status st = TM_OK;
    TM_TRY(need_red(c, (size_t)RED_BLOCKS + 1 + (size_t)n, err));
    *dev = c->red + RED_BLOCKS + 1;
    CU(cudaMemcpyAsync(*dev, v, (size_t)n * sizeof(double), cudaMemcpyHostToDevice, c->stream));
    /* The runtime stages pageable sources before returning, but waiting
     * costs microseconds and leaves no doubt that v may be freed now. */
    CU(cudaStreamSynchronize(c->stream));
out:
    return st;
}

tm_status op_scale_cols(void *ctx, const struct tm_bmat *A, const double *scale, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    double *d;
    int64_t n = A->rows * A->cols;
    ENTER(c);
    if (A->rows <= 0 || A->cols <= 0)
        return TM_OK;
    TM_TRY(stage_doubles(c, scale, A->cols, &d, err));
    if (c->f64)
        k_scale_cols<double><<<blocks_for(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            A->rows, A->cols, (double *)A->data, A->ld, d);
    else
        k_scale_cols<float><<<blocks_for(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            A->rows, A->cols, (float *)A->data, A->ld, d);
    LAUNCHED();
out:
    return st;
}

tm_status scale_all(cctx *c, const struct tm_bmat *C, double beta, char *err)
{
    tm_status st = TM_OK;
    double *d;
    double *col = (double *)malloc((size_t)C->cols * sizeof(double));
    if (!col)
        return errf(err, TM_ENOMEM, "cuda: out of host memory");
    for (int64_t j = 0; j < C->cols; j++)
        col[j] = beta;
    TM_TRY(stage_doubles(c, col, C->cols, &d, err));
    if (c->f64)
        k_scale_cols<double>
            <<<blocks_for(C->rows * C->cols, EW_THREADS), EW_THREADS, 0, c->stream>>>(
                C->rows, C->cols, (double *)C->data, C->ld, d);
    else
        k_scale_cols<float>
            <<<blocks_for(C->rows * C->cols, EW_THREADS), EW_THREADS, 0, c->stream>>>(
                C->rows, C->cols, (float *)C->data, C->ld, d);
    LAUNCHED();
out:
    free(col);
    return st;
}

tm_status op_axpy(void *ctx, double alpha, const struct tm_bmat *X, const struct tm_bmat *Y,
                  char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    int64_t n = X->rows * X->cols;
    ENTER(c);
    if (X->rows <= 0 || X->cols <= 0)
        return TM_OK;
    if (c->f64)
        k_axpy<double><<<blocks_for(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            X->rows, X->cols, alpha, (const double *)X->data, X->ld, (double *)Y->data, Y->ld);
    else
        k_axpy<float><<<blocks_for(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            X->rows, X->cols, (float)alpha, (const float *)X->data, X->ld, (float *)Y->data, Y->ld);
    LAUNCHED();
out:
    return st;
}

/* Sums the RED_BLOCKS partials into one host double. */
tm_status finish_sum(cctx *c, double *out, char *err)
{
    tm_status st = TM_OK;
    k_sum_partials<<<1, RED_THREADS, 0, c->stream>>>(c->red, RED_BLOCKS, c->red + RED_BLOCKS);
    LAUNCHED();
    CU(cudaMemcpyAsync(out, c->red + RED_BLOCKS, sizeof(double), cudaMemcpyDeviceToHost,
                       c->stream));
    CU(cudaStreamSynchronize(c->stream));
out:
    return st;
}

tm_status op_dot(void *ctx, const struct tm_bmat *A, const struct tm_bmat *B, double *out,
                 char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    ENTER(c);
    *out = 0.0;
    if (A->rows <= 0 || A->cols <= 0)
        return TM_OK;
    if (c->f64)
        k_dot_partial<double><<<RED_BLOCKS, RED_THREADS, 0, c->stream>>>(
            A->rows, A->cols, (const double *)A->data, A->ld, (const double *)B->data, B->ld,
            c->red);
    else
        k_dot_partial<float><<<RED_BLOCKS, RED_THREADS, 0, c->stream>>>(
            A->rows, A->cols, (const float *)A->data, A->ld, (const float *)B->data, B->ld, c->red);
    LAUNCHED();
    TM_TRY(finish_sum(c, out, err));
out:
    return st;
}

tm_status col_reduce(cctx *c, const struct tm_bmat *A, int norm, double *out, char *err)
{
    tm_status st = TM_OK;
    if (A->cols <= 0)
        return TM_OK;
    if (A->rows <= 0) {
        for (int64_t j = 0; j < A->cols; j++)
            out[j] = 0.0;
        return TM_OK;
    }
    if (A->cols > 0x7fffffffLL)
        return errf(err, TM_ETOOBIG, "cuda: too many columns");
    TM_TRY(need_red(c, (size_t)A->cols, err));
    if (c->f64)
        k_col_reduce<double><<<(unsigned)A->cols, RED_THREADS, 0, c->stream>>>(
            A->rows, (const double *)A->data, A->ld, norm, c->red);
    else
        k_col_reduce<float><<<(unsigned)A->cols, RED_THREADS, 0, c->stream>>>(
            A->rows, (const float *)A->data, A->ld, norm, c->red);
    LAUNCHED();
    CU(cudaMemcpyAsync(out, c->red, (size_t)A->cols * sizeof(double), cudaMemcpyDeviceToHost,
                       c->stream));
    CU(cudaStreamSynchronize(c->stream));
out:
    return st;
}

tm_status op_col_norms(void *ctx, const struct tm_bmat *A, double *out, char *err)
{
    cctx *c = (cctx *)ctx;
    ENTER(c);
    return col_reduce(c, A, 1, out, err);
}

tm_status op_col_sums(void *ctx, const struct tm_bmat *A, double *out, char *err)
{
    cctx *c = (cctx *)ctx;
    ENTER(c);
    return col_reduce(c, A, 0, out, err);
}

/* ------------------------------------------------------------- NMF updates */

tm_status op_hals_sweep(void *ctx, const struct tm_bmat *M, const struct tm_bmat *G,
                        const struct tm_bmat *XHt, double l1, double l2, const int64_t *perm,
                        double *violation, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    int64_t k = M->cols;
    int *hperm = NULL, *dperm;
    ENTER(c);
    *violation = 0.0;
    if (M->rows <= 0 || k <= 0)
        return TM_OK;
    if (k > INT_MAX / 2)
        return errf(err, TM_ETOOBIG, "cuda hals: too many components");
    hperm = (int *)malloc((size_t)k * sizeof(int));
    if (!hperm)
        return errf(err, TM_ENOMEM, "cuda hals: out of host memory");
    for (int64_t t = 0; t < k; t++)
        hperm[t] = perm ? (int)perm[t] : (int)t;
    /* The permutation goes after the partials in the reduction buffer. */
    TM_TRY(need_red(c, (size_t)RED_BLOCKS + 1 + (size_t)k, err));
    dperm = (int *)(c->red + RED_BLOCKS + 1);
    CU(cudaMemcpyAsync(dperm, hperm, (size_t)k * sizeof(int), cudaMemcpyHostToDevice, c->stream));
    if (c->f64)
        k_hals<double><<<RED_BLOCKS, RED_THREADS, 0, c->stream>>>(
            M->rows, (int)k, (double *)M->data, M->ld, (const double *)G->data, G->ld,
            (const double *)XHt->data, XHt->ld, l1, l2, dperm, c->red);
    else
        k_hals<float><<<RED_BLOCKS, RED_THREADS, 0, c->stream>>>(
            M->rows, (int)k, (float *)M->data, M->ld, (const float *)G->data, G->ld,
            (const float *)XHt->data, XHt->ld, (float)l1, (float)l2, dperm, c->red);
    LAUNCHED();
    TM_TRY(finish_sum(c, violation, err));
out:
    free(hperm);
    return st;
}

tm_status op_mu_update(void *ctx, const struct tm_bmat *M, const struct tm_bmat *numer,
                       const struct tm_bmat *denom, const double *denom_row, double l1, double l2,
                       double zero_below, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    void *drow = NULL;
    int64_t n = M->rows * M->cols;
    ENTER(c);
    if (M->rows <= 0 || M->cols <= 0)
        return TM_OK;
    if (!denom) {
        /* The row goes after the partials, converted to the context's type. */
        double *staged;
        TM_TRY(need_red(c, (size_t)RED_BLOCKS + 1 + (size_t)M->cols, err));
        if (c->f64) {
            TM_TRY(stage_doubles(c, denom_row, M->cols, &staged, err));
            drow = staged;
        } else {
            float *hf = (float *)malloc((size_t)M->cols * sizeof(float));
            if (!hf)
                return errf(err, TM_ENOMEM, "cuda mu: out of host memory");
            for (int64_t j = 0; j < M->cols; j++)
                hf[j] = (float)denom_row[j];
            drow = c->red + RED_BLOCKS + 1;
            cudaError_t e = cudaMemcpyAsync(drow, hf, (size_t)M->cols * sizeof(float),
                                            cudaMemcpyHostToDevice, c->stream);
            if (e == cudaSuccess)
                e = cudaStreamSynchronize(c->stream); /* before hf is freed */
            free(hf);
            CU(e);
        }
    }
    if (c->f64)
        k_mu<double><<<blocks_for(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            M->rows, M->cols, (double *)M->data, M->ld, (const double *)numer->data, numer->ld,
            denom ? (const double *)denom->data : NULL, denom ? denom->ld : 0, (const double *)drow,
            l1, l2, TM_NMF_EPSILON, zero_below);
    else
        k_mu<float><<<blocks_for(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            M->rows, M->cols, (float *)M->data, M->ld, (const float *)numer->data, numer->ld,
            denom ? (const float *)denom->data : NULL, denom ? denom->ld : 0, (const float *)drow,
            (float)l1, (float)l2, (float)TM_NMF_EPSILON, (float)zero_below);
    LAUNCHED();
out:
    return st;
}

tm_status op_pgd_update(void *ctx, const struct tm_bmat *M, const struct tm_bmat *MG,
                        const struct tm_bmat *XHt, double lr, double penalty, double mu, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    int64_t n = M->rows * M->cols;
    ENTER(c);
    if (M->rows <= 0 || M->cols <= 0)
        return TM_OK;
    if (c->f64)
        k_pgd<double><<<blocks_for(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            M->rows, M->cols, (double *)M->data, M->ld, (const double *)MG->data, MG->ld,
            (const double *)XHt->data, XHt->ld, lr, penalty, mu);
    else
        k_pgd<float><<<blocks_for(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(
            M->rows, M->cols, (float *)M->data, M->ld, (const float *)MG->data, MG->ld,
            (const float *)XHt->data, XHt->ld, (float)lr, (float)penalty, (float)mu);
    LAUNCHED();
out:
    return st;
}

tm_status op_kl_spmm(void *ctx, const struct tm_bsparse *X, int trans, const struct tm_bmat *P,
                     const struct tm_bmat *Q, double eps, const struct tm_bmat *C, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    int64_t rows = trans ? X->n : X->m;
    const int *ptr = trans ? X->t_ptr : X->x_ptr, *ind = trans ? X->t_ind : X->x_ind;
    const void *val = trans ? X->t_val : X->x_val;
    unsigned blocks = blocks_for(rows * 32, EW_THREADS);
    ENTER(c);
    if (C->rows <= 0 || C->cols <= 0)
        return TM_OK;
    if (c->f64)
        k_kl_ratio<double><<<blocks, EW_THREADS, 0, c->stream>>>(
            rows, ptr, ind, (const double *)val, (const double *)P->data, P->ld,
            (const double *)Q->data, Q->ld, (int)P->cols, eps, (double *)X->r_val);
    else
        k_kl_ratio<float><<<blocks, EW_THREADS, 0, c->stream>>>(
            rows, ptr, ind, (const float *)val, (const float *)P->data, P->ld,
            (const float *)Q->data, Q->ld, (int)P->cols, eps, (float *)X->r_val);
    LAUNCHED();
    TM_TRY(spmm_desc(c, trans ? X->dtr : X->dxr, 1.0, Q, 0.0, C, err));
out:
    return st;
}

tm_status op_kl_sum(void *ctx, const struct tm_bsparse *X, const struct tm_bmat *W,
                    const struct tm_bmat *Ht, double eps, double *out, char *err)
{
    cctx *c = (cctx *)ctx;
    tm_status st = TM_OK;
    ENTER(c);
    *out = 0.0;
    if (c->f64)
        k_kl_sum<double><<<RED_BLOCKS, RED_THREADS, 0, c->stream>>>(
            X->m, X->x_ptr, X->x_ind, (const double *)X->x_val, (const double *)W->data, W->ld,
            (const double *)Ht->data, Ht->ld, (int)W->cols, eps, c->red);
    else
        k_kl_sum<float><<<RED_BLOCKS, RED_THREADS, 0, c->stream>>>(
            X->m, X->x_ptr, X->x_ind, (const float *)X->x_val, (const float *)W->data, W->ld,
            (const float *)Ht->data, Ht->ld, (int)W->cols, eps, c->red);
    LAUNCHED();
    TM_TRY(finish_sum(c, out, err));
out:
    return st;
}

const struct tm_backend_ops cuda_ops = {
    .name = "cuda",
    .create = op_create,
    .destroy = op_destroy,
    .sync = op_sync,
    .elem_size = op_elem_size,
    .mat_bytes = op_mat_bytes,
    .sparse_bytes = op_sparse_bytes,
    .mat_alloc = op_mat_alloc,
    .mat_free = op_mat_free,
    .upload = op_upload,
    .download = op_download,
    .sparse_upload = op_sparse_upload,
    .sparse_free = op_sparse_free,
    .spmm = op_spmm,
    .gemm = op_gemm,
    .gram = op_gram,
    .orth_qr = op_orth_qr,
    .orth_lu = op_orth_lu,
    .svd_small = op_svd_small,
    .fill = op_fill,
    .copy = op_copy,
    .scale_cols = op_scale_cols,
    .axpy = op_axpy,
    .dot = op_dot,
    .col_norms = op_col_norms,
    .col_sums = op_col_sums,
    .hals_sweep = op_hals_sweep,
    .mu_update = op_mu_update,
    .pgd_update = op_pgd_update,
    .kl_spmm = op_kl_spmm,
    .kl_sum = op_kl_sum,
};

/* ------------------------------------------------------------ device queries */

/* This build's machine code: sm_80 and sm_90, plus compute_90 PTX. */
const int MIN_CC_MAJOR = 8;

tm_status plugin_devices(struct tm_gpu_device_desc *out, int max, int *n, char *reason)
{
    int count = 0, used = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    *n = 0;
    if (e != cudaSuccess) {
        clear_last_error();
        int drv = 0;
        cudaDriverGetVersion(&drv);
        if (drv == 0)
            return errf(reason, TM_ENODEV, "no NVIDIA driver on this machine (CUDA: %s)",
                        cudaGetErrorString(e));
        return errf(reason, TM_ENODEV, "no usable GPU: %s (driver %d.%d)", cudaGetErrorString(e),
                    drv / 1000, (drv % 1000) / 10);
    }
    if (count == 0)
        return errf(reason, TM_ENODEV, "no CUDA-capable device is detected");
    for (int d = 0; d < count && used < max; d++) {
        cudaDeviceProp p;
        size_t fr = 0, to = 0;
        if (cudaGetDeviceProperties(&p, d) != cudaSuccess) {
            clear_last_error();
            continue;
        }
        if (p.major < MIN_CC_MAJOR) {
            errf(reason, TM_ENODEV,
                 "GPU %d (%s) has compute capability %d.%d; this build needs %d.0", d, p.name,
                 p.major, p.minor, MIN_CC_MAJOR);
            continue;
        }
        if (cudaSetDevice(d) != cudaSuccess || cudaMemGetInfo(&fr, &to) != cudaSuccess) {
            clear_last_error();
            continue;
        }
        memset(&out[used], 0, sizeof(out[used]));
        out[used].ordinal = d;
        /* Device names are short; cut at the field's size. */
        memcpy(out[used].name, p.name, sizeof(out[used].name) - 1);
        out[used].name[sizeof(out[used].name) - 1] = '\0';
        out[used].cc_major = p.major;
        out[used].cc_minor = p.minor;
        out[used].multiprocessors = p.multiProcessorCount;
        out[used].total_bytes = (int64_t)to;
        out[used].free_bytes = (int64_t)fr;
        used++;
    }
    *n = used;
    if (used == 0 && reason && !reason[0])
        errf(reason, TM_ENODEV, "no usable GPU among %d devices", count);
    return used > 0 ? TM_OK : TM_ENODEV;
}

tm_status plugin_mem_info(int ordinal, int64_t *free_bytes, int64_t *total_bytes, char *err)
{
    size_t fr = 0, to = 0;
    cudaError_t e = cudaSetDevice(ordinal);
    if (e == cudaSuccess)
        e = cudaMemGetInfo(&fr, &to);
    if (e != cudaSuccess)
        return cuda_st(e, "cudaMemGetInfo", err);
    *free_bytes = (int64_t)fr;
    *total_bytes = (int64_t)to;
    return TM_OK;
}

void plugin_versions(int *runtime, int *driver)
{
    *runtime = 0;
    *driver = 0;
    cudaRuntimeGetVersion(runtime);
    cudaDriverGetVersion(driver);
}

const struct tm_gpu_plugin plugin = {
    TM_GPU_PLUGIN_ABI, &cuda_ops, plugin_devices, plugin_mem_info, plugin_versions,
};

} // namespace

extern "C" __attribute__((visibility("default"))) const struct tm_gpu_plugin *
tm_gpu_plugin_entry(int abi)
{
    return abi == TM_GPU_PLUGIN_ABI ? &plugin : NULL;
}
