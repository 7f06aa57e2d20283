/*
 * bench_kernels.c - the CPU backend's hot primitives, one at a time, on a
 * Matrix Market matrix: the numbers behind the kernel choices in
 * core/numerics/cpu/ (bench/NOTES.md). Each op runs --reps times; the
 * fastest run counts (the machine is shared). Build it at two commits to
 * compare kernels. OpenBLAS runs one thread, as `topicd fit` runs it for every method but full_svd
 * (server/cli.c), unless OPENBLAS_NUM_THREADS says otherwise.
 *
 * usage: bench_kernels X.mtx [k [threads [reps]]]     (k 20, threads 1, reps 10)
 * make bench-kernels MTX=X.mtx [K=20] [THREADS=1]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "api/mmio.h"
#include "core/alloc.h"
#include "core/numerics/backend.h"
#include "core/numerics/backend_cpu.h"
#include "core/numerics/rng.h"
#include "core/numerics/transpose.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

struct bench {
    const struct tm_backend_ops *o;
    void *ctx;
    const struct tm_csr *csr;
    struct tm_bsparse *x;
    double *host; /* terms x k, for the in-place transpose */
    struct tm_bmat docs_a, docs_b, terms_a, terms_b, g, gram_out;
    /* k x terms and k x docs: the factors transposed, as NMF's fused halves keep them */
    struct tm_bmat terms_t, docs_t;
    /* hals's previous iterates (as terms_t, docs_t) and its second Gram matrix */
    struct tm_bmat terms_p, docs_p, gram_hat;
    struct tm_bmat docs_q; /* docs x k, full rank: orth_qr's input and output */
};

enum op {
    SPMM_X,
    SPMM_XT,
    GRAM_SPMM,
    HALS_TERMS,
    FUSED_TERMS,
    FUSED_DOCS,
    INNER_TERMS,
    INNER_DOCS,
    MU_TERMS,
    GRAM_TERMS,
    SMALL_GEMM,
    SPARSE_UPLOAD,
    TRANSPOSE,
    ORTH_QR
};

static const char *const op_names[] = {
    "spmm X B (B: terms x k)",
    "spmm X^T B (B: docs x k)",
    "gram_spmm X X^T V",
    "hals_sweep on Ht",
    "hals_sweep_fused H half",
    "hals_sweep_fused W half",
    "hals_inner_fused H half (cap 1, extrapolated, 2 grams)",
    "hals_inner_fused W half (cap 6, rho 0, extrapolated)",
    "mu_update_fused H half",
    "gram Ht^T Ht",
    "gemm Ht G (terms x k, k x k)",
    "sparse_upload (X^T and its splits) + sparse_free",
    "tm_transpose_inplace terms x k, there and back",
    "orth_qr docs x k",
};

static tm_status run(struct bench *b, enum op op, char *err)
{
    const struct tm_backend_ops *o = b->o;
    double v, c;
    switch (op) {
    case SPMM_X:
        return o->spmm(b->ctx, b->x, TM_NOTRANS, 1.0, &b->terms_a, 0.0, &b->docs_b, err);
    case SPMM_XT:
        return o->spmm(b->ctx, b->x, TM_TRANS, 1.0, &b->docs_a, 0.0, &b->terms_b, err);
    case GRAM_SPMM:
        return o->gram_spmm(b->ctx, b->x, TM_NOTRANS, &b->docs_a, &b->docs_b, err);
    case HALS_TERMS:
        return o->hals_sweep(b->ctx, &b->terms_a, &b->g, &b->terms_b, 0, 0, NULL, &v, err);
    case FUSED_TERMS:
        return o->hals_sweep_fused(b->ctx, b->x, TM_TRANS, &b->terms_t, &b->docs_t, &b->g, 0, 0,
                                   NULL, &v, &c, &b->gram_out, err);
    case FUSED_DOCS:
        return o->hals_sweep_fused(b->ctx, b->x, TM_NOTRANS, &b->docs_t, &b->terms_t, &b->g, 0, 0,
                                   NULL, &v, &c, &b->gram_out, err);
    case INNER_TERMS: /* hals's H half: one sweep, <P, M>, both Gram matrices */
        return o->hals_inner_fused(b->ctx, b->x, TM_TRANS, &b->terms_t, &b->docs_t, &b->g, 0, 0,
                                   NULL, 1, 0.1, &b->terms_p, 0.5, &v, &c, &b->gram_out,
                                   &b->gram_hat, err);
    case INNER_DOCS: /* hals's W half at its most sweeps (rho 0: no tile stops early) */
        return o->hals_inner_fused(b->ctx, b->x, TM_NOTRANS, &b->docs_t, &b->terms_t, &b->g, 0, 0,
                                   NULL, 6, 0.0, &b->docs_p, 0.5, &v, NULL, NULL, &b->gram_hat,
                                   err);
    case MU_TERMS:
        return o->mu_update_fused(b->ctx, b->x, TM_TRANS, &b->terms_t, &b->docs_t, &b->g, 0, 0, &c,
                                  &b->gram_out, err);
    case GRAM_TERMS:
        return o->gram(b->ctx, &b->terms_a, &b->gram_out, err);
    case SMALL_GEMM:
        return o->gemm(b->ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &b->terms_a, &b->g, 0.0, &b->terms_b,
                       err);
    case SPARSE_UPLOAD: {
        struct tm_bsparse *xb;
        tm_status st = o->sparse_upload(b->ctx, b->csr, &xb, err);
        if (st == TM_OK)
            o->sparse_free(b->ctx, xb);
        return st;
    }
    case TRANSPOSE: {
        const int64_t rows = b->terms_a.rows, k = b->terms_a.cols;
        tm_status st = tm_transpose_inplace(b->host, rows, k, err);
        return st != TM_OK ? st : tm_transpose_inplace(b->host, k, rows, err);
    }
    case ORTH_QR: /* an orthonormal input costs what any full-rank one does */
        return o->orth_qr(b->ctx, &b->docs_q, err);
    }
    return TM_EINVAL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_kernels X.mtx [k [threads [reps]]]\n");
        return 2;
    }
    int k = argc > 2 ? atoi(argv[2]) : 20, threads = argc > 3 ? atoi(argv[3]) : 1;
    int reps = argc > 4 ? atoi(argv[4]) : 10;
    if (k < 1 || threads < 1 || reps < 1) {
        fprintf(stderr, "bench_kernels: k, threads and reps must be >= 1\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    struct stat st;
    struct tm_csr x;
    struct tm_api_error e;
    char err[TM_ERR_SIZE] = "";
    if (!f || fstat(fileno(f), &st) ||
        tm_mmio_read_file(f, (int64_t)st.st_size, 1 << 20, &x, &e) != TM_OK) {
        fprintf(stderr, "bench_kernels: cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    if (!getenv("OPENBLAS_NUM_THREADS"))
        openblas_set_num_threads(1);
    struct bench b = {0};
    struct tm_backend_config cfg = {TM_DTYPE_AUTO, 0, threads};
    b.o = tm_backend_cpu();
    b.csr = &x;
    /* tm_malloc'd, as the fit's factors are */
    b.host = tm_calloc((size_t)x.n_cols * (size_t)k + 1, sizeof(double));
    if (!b.host || b.o->create(&cfg, &b.ctx, err) || b.o->sparse_upload(b.ctx, &x, &b.x, err) ||
        b.o->mat_alloc(b.ctx, x.n_rows, k, &b.docs_a, err) ||
        b.o->mat_alloc(b.ctx, x.n_rows, k, &b.docs_b, err) ||
        b.o->mat_alloc(b.ctx, x.n_cols, k, &b.terms_a, err) ||
        b.o->mat_alloc(b.ctx, x.n_cols, k, &b.terms_b, err) ||
        b.o->mat_alloc(b.ctx, k, k, &b.g, err) || b.o->mat_alloc(b.ctx, k, k, &b.gram_out, err) ||
        b.o->mat_alloc(b.ctx, k, x.n_cols, &b.terms_t, err) ||
        b.o->mat_alloc(b.ctx, k, x.n_rows, &b.docs_t, err) ||
        b.o->mat_alloc(b.ctx, k, x.n_cols, &b.terms_p, err) ||
        b.o->mat_alloc(b.ctx, k, x.n_rows, &b.docs_p, err) ||
        b.o->mat_alloc(b.ctx, k, k, &b.gram_hat, err) ||
        b.o->mat_alloc(b.ctx, x.n_rows, k, &b.docs_q, err)) {
        fprintf(stderr, "bench_kernels: %s\n", err);
        return 1;
    }
    /* Non-negative factors and a positive definite Gram, as NMF has them. */
    b.o->fill(b.ctx, &b.docs_a, 0.25, err);
    b.o->fill(b.ctx, &b.terms_a, 0.5, err);
    b.o->fill(b.ctx, &b.terms_b, 0.125, err);
    b.o->fill(b.ctx, &b.terms_t, 0.5, err); /* terms_a transposed, both all 0.5 */
    b.o->fill(b.ctx, &b.docs_t, 0.25, err); /* docs_a transposed */
    b.o->gram(b.ctx, &b.docs_a, &b.g, err);
    {
        /* Gaussian, so that CholQR's Gram is well conditioned */
        struct tm_rng rng;
        tm_rng_init(&rng, 1);
        double *gauss = tm_mallocarray((size_t)x.n_rows * (size_t)k + 1, sizeof(double));
        if (!gauss) {
            fprintf(stderr, "bench_kernels: out of memory\n");
            return 1;
        }
        for (int64_t i = 0; i < x.n_rows * (int64_t)k; i++)
            gauss[i] = tm_rng_normal(&rng);
        b.o->upload(b.ctx, gauss, x.n_rows, &b.docs_q, err);
        tm_free(gauss);
    }
    printf("%lld x %lld, nnz %lld; k = %d, %d thread(s), fastest of %d\n\n", (long long)x.n_rows,
           (long long)x.n_cols, (long long)tm_csr_nnz(&x), k, threads, reps);
    printf("| op | ms |\n|---|---:|\n");
    for (int op = SPMM_X; op <= ORTH_QR; op++) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            if (run(&b, (enum op)op, err) != TM_OK) {
                fprintf(stderr, "bench_kernels: %s: %s\n", op_names[op], err);
                return 1;
            }
            double t = now() - t0;
            best = t < best ? t : best;
            if (op == HALS_TERMS || op == FUSED_TERMS || op == FUSED_DOCS || op == INNER_TERMS ||
                op == INNER_DOCS || op == MU_TERMS) { /* updates move M */
                b.o->fill(b.ctx, &b.terms_a, 0.5, err);
                b.o->fill(b.ctx, &b.docs_a, 0.25, err);
                b.o->fill(b.ctx, &b.terms_t, 0.5, err);
                b.o->fill(b.ctx, &b.docs_t, 0.25, err);
                b.o->gram(b.ctx, &b.docs_a, &b.g, err);
            }
        }
        printf("| %s | %.2f |\n", op_names[op], best * 1e3);
    }
    b.o->sparse_free(b.ctx, b.x);
    b.o->destroy(b.ctx);
    tm_free(b.host);
    tm_csr_release(&x);
    return 0;
}
