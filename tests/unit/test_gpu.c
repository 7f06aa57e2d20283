/*
 * test_gpu.c - the CUDA backend: the loader's "no GPU" answers (run
 * everywhere, each in a forked child so that its one-time load sees the
 * environment the test sets), and, where a GPU is present, every primitive
 * against the CPU backend on random inputs, whole fits GPU vs CPU, several
 * contexts at once, and out-of-memory handling. Without a GPU those skip and
 * say why.
 *
 * `make test` points TOPICD_GPU_PLUGIN at the plugin it built (when it built
 * one), so the tests find it although run_tests lives in a subfolder.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/csr.h"
#include "core/fit.h"
#include "core/model.h"
#include "core/numerics/backend.h"
#include "gpu/gpu.h"
#include "gpuchild.h"
#include "harness.h"

/* ------------------------------------------------------------ the loader */

struct probe {
    int available;
    int fit_status; /* tm_fit with device "gpu" on a small matrix, -1 if not run */
    char reason[TM_ERR_SIZE];
    char fit_err[TM_ERR_SIZE];
};

static tm_status tiny_csr(struct tm_csr *x)
{
    /* 6 x 5, two non-zeros a row. */
    tm_status st = tm_csr_init(x, 6, 5, 12, NULL);
    if (st != TM_OK)
        return st;
    for (int i = 0; i < 6; i++) {
        int a = i % 5, b = (i + 2) % 5; /* distinct */
        x->indptr[i + 1] = 2 * (i + 1);
        x->indices[2 * i] = a < b ? a : b;
        x->indices[2 * i + 1] = a < b ? b : a;
        x->data[2 * i] = 1.0 + i;
        x->data[2 * i + 1] = 0.5;
    }
    return TM_OK;
}

static void probe_load(void *out)
{
    struct probe *p = out;
    p->available = tm_gpu_load(p->reason) != NULL;
}

/* A fit on the backend the loader gives, as the CLI runs device "gpu";
 * none without one (fit_status stays -1). */
static void probe_load_and_fit(void *out)
{
    struct probe *p = out;
    struct tm_csr x;
    struct tm_model_params params;
    struct tm_fit_result res;
    const struct tm_backend_ops *ops = tm_gpu_load(p->reason);
    p->available = ops != NULL;
    if (ops && tiny_csr(&x) == TM_OK) {
        tm_model_params_init(&params);
        params.n_topics = 2;
        params.device = TM_DEVICE_GPU;
        p->fit_status = tm_fit(ops, NULL, &x, &params, NULL, &res, p->fit_err);
        tm_fit_result_release(&res);
        tm_csr_release(&x);
    }
}

/* Loads the plugin in a child with TOPICD_GPU_PLUGIN = plugin (NULL: unset)
 * and reports what it saw. Returns 0 on success. */
static int probe_in_child(const char *plugin, int run_fit, struct probe *out)
{
    memset(out, 0, sizeof(*out));
    out->fit_status = -1;
    return tm_gpuchild_run(plugin, run_fit ? probe_load_and_fit : probe_load, out, sizeof(*out));
}

/* The plugin this build made, or NULL. */
static const char *built_plugin(void)
{
    static char path[4096];
    const char *env = getenv("TOPICD_GPU_PLUGIN");
    if (env && env[0])
        snprintf(path, sizeof(path), "%s", env);
    else
        snprintf(path, sizeof(path), "%s/libtopicd_cuda.so", tm_test_bindir());
    return access(path, R_OK) == 0 ? path : NULL;
}

TM_TEST(gpu_loader_plugin_missing)
{
    struct probe p;
    REQUIRE(probe_in_child("/nonexistent/libtopicd_cuda.so", 1, &p) == 0);
    CHECK_INT_EQ(p.available, 0);
    CHECK(strstr(p.reason, "not found") != NULL);
    CHECK(strstr(p.reason, "/nonexistent/libtopicd_cuda.so") != NULL);
    /* No backend, so no fit: `topicd fit` then fails naming the device
     * (test_cli.c, cli_fit_device). */
    CHECK_INT_EQ(p.fit_status, -1);
}

TM_TEST(gpu_loader_plugin_broken)
{
    char path[] = "/tmp/topicd_fake_pluginXXXXXX";
    int fd = mkstemp(path);
    struct probe p;
    REQUIRE(fd >= 0);
    CHECK(write(fd, "not an ELF file\n", 16) == 16);
    close(fd);
    int r = probe_in_child(path, 0, &p);
    unlink(path);
    REQUIRE(r == 0);
    CHECK_INT_EQ(p.available, 0);
    CHECK(strstr(p.reason, "cannot load GPU plugin") != NULL);
}

TM_TEST(gpu_loader_real_plugin)
{
    const char *plugin = built_plugin();
    struct probe p;
    if (!plugin)
        SKIP("no CUDA plugin in this build (GPU=0 or no nvcc)");
    REQUIRE(probe_in_child(plugin, 1, &p) == 0);
    if (p.available) {
        /* A GPU: the same fit must succeed there. */
        CHECK_INT_EQ(p.fit_status, TM_OK);
        return;
    }
    /* The plugin loads, but this machine has no driver or no device: the
     * reason says which, and there is no backend to fit on. */
    CHECK(p.reason[0] != '\0');
    CHECK(strstr(p.reason, "driver") || strstr(p.reason, "GPU") || strstr(p.reason, "device"));
    CHECK(strstr(p.reason, "cannot load") == NULL || strstr(p.reason, "libcu") != NULL);
    CHECK_INT_EQ(p.fit_status, -1);
}

struct fake_seen {
    int available, n_devices, mem_status;
    char ops_name[32], dev_name[96], reason[TM_ERR_SIZE], path[512], gpu_reason[TM_ERR_SIZE];
    int64_t total;
};

static void see_fake(void *arg)
{
    struct fake_seen *f = arg;
    struct tm_gpu_device_desc d[4];
    int64_t fr = 0;
    const struct tm_backend_ops *ops = tm_gpu_load(f->reason);
    f->available = ops != NULL;
    if (ops)
        snprintf(f->ops_name, sizeof(f->ops_name), "%s", ops->name);
    if (tm_gpu_devices(d, 4, &f->n_devices, f->reason) == TM_OK && f->n_devices > 0)
        snprintf(f->dev_name, sizeof(f->dev_name), "%s", d[0].name);
    f->mem_status = tm_gpu_mem_info(0, &fr, &f->total, NULL);
    snprintf(f->path, sizeof(f->path), "%s", tm_gpu_plugin_path());
    snprintf(f->gpu_reason, sizeof(f->gpu_reason), "%s", tm_gpu_reason());
}

TM_TEST(gpu_loader_fake_plugin)
{
    const char *plugin = tm_gpuchild_fake_plugin("fake_gpu_plugin.so");
    struct fake_seen f;
    if (!plugin)
        SKIP("tests/fake_gpu_plugin.so not built (make test builds it)");
    memset(&f, 0, sizeof(f));
    REQUIRE(tm_gpuchild_run(plugin, see_fake, &f, sizeof(f)) == 0);
    CHECK_INT_EQ(f.available, 1);
    CHECK_STR_EQ(f.ops_name, "fake-cuda");
    CHECK_INT_EQ(f.n_devices, 1);
    CHECK_STR_EQ(f.dev_name, "Fake H200");
    CHECK_INT_EQ(f.mem_status, TM_OK);
    CHECK_INT_EQ(f.total, (int64_t)16 << 30);
    CHECK_STR_EQ(f.path, plugin);
    CHECK_STR_EQ(f.gpu_reason, "");
}

TM_TEST(gpu_loader_abi_mismatch)
{
    const char *plugin = tm_gpuchild_fake_plugin("fake_gpu_plugin_abi0.so");
    struct fake_seen f;
    if (!plugin)
        SKIP("tests/fake_gpu_plugin_abi0.so not built (make test builds it)");
    memset(&f, 0, sizeof(f));
    REQUIRE(tm_gpuchild_run(plugin, see_fake, &f, sizeof(f)) == 0);
    CHECK_INT_EQ(f.available, 0);
    CHECK(strstr(f.reason, "ABI mismatch") != NULL);
    CHECK(strstr(f.gpu_reason, "ABI mismatch") != NULL);
    CHECK_STR_EQ(f.path, "");
}

/* --------------------------------------------- with a GPU: vs the CPU backend */

static const struct tm_backend_ops *gpu_ops(char *why)
{
    char reason[TM_ERR_SIZE] = "";
    const struct tm_backend_ops *ops = tm_gpu_load(reason);
    if (!ops)
        snprintf(why, 256, "no GPU: %.240s", reason);
    return ops;
}

#define NEED_GPU(ops)                                                                              \
    char why__[256];                                                                               \
    const struct tm_backend_ops *ops = gpu_ops(why__);                                             \
    if (!ops)                                                                                      \
    SKIP(why__)

/* xorshift: tests need reproducible numbers, not numpy's. */
static uint64_t rs = 88172645463325252ULL;
static double urand(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0;
}

static double *rand_host(int64_t n, double lo, double hi)
{
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * urand();
    return v;
}

/* A random m x n CSR with about density * m * n non-zeros in (0, 1]. */
static tm_status rand_csr(struct tm_csr *x, int64_t m, int64_t n, double density)
{
    int64_t cap = (int64_t)(density * (double)m * (double)n * 1.5) + m + 16, nnz = 0;
    tm_status st = tm_csr_init(x, m, n, cap, NULL);
    if (st != TM_OK)
        return st;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n && nnz < cap; j++)
            if (urand() < density || (j == i % n && urand() < 0.5)) {
                x->indices[nnz] = (int32_t)j;
                x->data[nnz] = 0.05 + urand();
                nnz++;
            }
        x->indptr[i + 1] = nnz;
    }
    return TM_OK;
}

/* One matrix on both backends. */
struct twin {
    struct tm_bmat g, c;
};

struct duo {
    const struct tm_backend_ops *g, *c;
    void *gctx, *cctx;
    double tol;
    char err[TM_ERR_SIZE];
};

static int duo_open(struct duo *d, const struct tm_backend_ops *gops, enum tm_dtype dtype)
{
    struct tm_backend_config gcfg = {dtype, 0, 0}, ccfg = {TM_DTYPE_FLOAT64, 0, 1};
    memset(d, 0, sizeof(*d));
    d->g = gops;
    d->c = tm_backend_cpu();
    d->tol = dtype == TM_DTYPE_FLOAT64 ? 1e-9 : 2e-4;
    if (d->g->create(&gcfg, &d->gctx, d->err) != TM_OK)
        return -1;
    if (d->c->create(&ccfg, &d->cctx, d->err) != TM_OK)
        return -1;
    return 0;
}

static void duo_close(struct duo *d)
{
    if (d->gctx)
        d->g->destroy(d->gctx);
    if (d->cctx)
        d->c->destroy(d->cctx);
}

static int twin_new(struct duo *d, int64_t r, int64_t c, const double *host, struct twin *t)
{
    memset(t, 0, sizeof(*t));
    if (d->g->mat_alloc(d->gctx, r, c, &t->g, d->err) != TM_OK ||
        d->c->mat_alloc(d->cctx, r, c, &t->c, d->err) != TM_OK)
        return -1;
    if (host && (d->g->upload(d->gctx, host, r, &t->g, d->err) != TM_OK ||
                 d->c->upload(d->cctx, host, r, &t->c, d->err) != TM_OK))
        return -1;
    return 0;
}

static int twin_rand(struct duo *d, int64_t r, int64_t c, double lo, double hi, struct twin *t)
{
    double *h = rand_host(r * c, lo, hi);
    int rc = twin_new(d, r, c, h, t);
    free(h);
    return rc;
}

static void twin_free(struct duo *d, struct twin *t)
{
    d->g->mat_free(d->gctx, &t->g);
    d->c->mat_free(d->cctx, &t->c);
}

static int down2(struct duo *d, const struct twin *t, double **gh, double **ch)
{
    int64_t n = t->c.rows * t->c.cols;
    *gh = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    *ch = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (d->g->download(d->gctx, &t->g, *gh, t->g.rows, d->err) != TM_OK ||
        d->c->download(d->cctx, &t->c, *ch, t->c.rows, d->err) != TM_OK)
        return -1;
    return 0;
}

/* max |g - c| / max(1e-30, max |c|): the relative error of the matrix. */
static double rel_diff(struct duo *d, const struct twin *t)
{
    double *gh, *ch, diff = 0.0, scale = 1e-30;
    int64_t n = t->c.rows * t->c.cols;
    if (down2(d, t, &gh, &ch) != 0) {
        free(gh);
        free(ch);
        return INFINITY;
    }
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(gh[i] - ch[i]);
        diff = e > diff || isnan(e) ? e : diff;
        scale = fabs(ch[i]) > scale ? fabs(ch[i]) : scale;
    }
    free(gh);
    free(ch);
    return diff / scale;
}

/* For orthonormal-column results equal up to column signs: max over
 * columns of 1 - |g_j . c_j|. */
static double sign_free_diff(struct duo *d, const struct twin *t)
{
    double *gh, *ch, worst = 0.0;
    if (down2(d, t, &gh, &ch) != 0) {
        free(gh);
        free(ch);
        return INFINITY;
    }
    for (int64_t j = 0; j < t->c.cols; j++) {
        double dot = 0.0, ng = 0.0, nc = 0.0;
        for (int64_t i = 0; i < t->c.rows; i++) {
            dot += gh[i + j * t->c.rows] * ch[i + j * t->c.rows];
            ng += gh[i + j * t->c.rows] * gh[i + j * t->c.rows];
            nc += ch[i + j * t->c.rows] * ch[i + j * t->c.rows];
        }
        double cosv = fabs(dot) / sqrt(ng * nc + 1e-300);
        if (!(1.0 - cosv <= worst))
            worst = 1.0 - cosv;
    }
    free(gh);
    free(ch);
    return worst;
}

#define EXPECT_CLOSE(what, value, tol)                                                             \
    do {                                                                                           \
        double v__ = (value);                                                                      \
        if (!(v__ <= (tol)))                                                                       \
            tm_test_fail(t, __FILE__, __LINE__, "%s: relative difference %g > %g", what, v__,      \
                         (double)(tol));                                                           \
    } while (0)

#define BOTH(d, call_g, call_c)                                                                    \
    do {                                                                                           \
        tm_status sg__ = (call_g), sc__ = (call_c);                                                \
        if (sg__ != TM_OK || sc__ != TM_OK)                                                        \
            tm_test_fail(t, __FILE__, __LINE__, "%s: gpu %s, cpu %s: %s", #call_g,                 \
                         tm_status_name(sg__), tm_status_name(sc__), (d)->err);                    \
    } while (0)

static void scalars_close(struct tm_test_ctx *t, const char *what, const double *g, const double *c,
                          int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++) {
        double s = fabs(c[i]) > 1e-12 ? fabs(c[i]) : 1e-12;
        if (!(fabs(g[i] - c[i]) <= tol * (s > 1.0 ? s : 1.0) + tol * 1e-3))
            tm_test_fail(t, __FILE__, __LINE__, "%s[%lld]: gpu %.10g vs cpu %.10g", what,
                         (long long)i, g[i], c[i]);
    }
}

static void primitives(struct tm_test_ctx *t, const struct tm_backend_ops *gops,
                       enum tm_dtype dtype)
{
    struct duo d;
    struct tm_csr x = {0};
    struct tm_bsparse *gx = NULL, *cx = NULL;
    const int64_t m = 300, n = 200, k = 12;
    struct twin A, B, C, W, Ht, G, XHt, Q, M1, M2, S1;
    double tol;

    if (duo_open(&d, gops, dtype) != 0) {
        tm_test_fail(t, __FILE__, __LINE__, "create: %s", d.err);
        duo_close(&d);
        return;
    }
    tol = d.tol;
    REQUIRE(rand_csr(&x, m, n, 0.05) == TM_OK);
    BOTH(&d, d.g->sparse_upload(d.gctx, &x, &gx, d.err),
         d.c->sparse_upload(d.cctx, &x, &cx, d.err));
    REQUIRE(gx && cx);

    /* spmm, both ways, with beta */
    REQUIRE(twin_rand(&d, n, k, -1, 1, &B) == 0);
    REQUIRE(twin_rand(&d, m, k, -1, 1, &C) == 0);
    BOTH(&d, d.g->spmm(d.gctx, gx, TM_NOTRANS, 1.5, &B.g, 0.5, &C.g, d.err),
         d.c->spmm(d.cctx, cx, TM_NOTRANS, 1.5, &B.c, 0.5, &C.c, d.err));
    EXPECT_CLOSE("spmm X*B", rel_diff(&d, &C), tol);
    BOTH(&d, d.g->spmm(d.gctx, gx, TM_TRANS, 1.0, &C.g, 0.0, &B.g, d.err),
         d.c->spmm(d.cctx, cx, TM_TRANS, 1.0, &C.c, 0.0, &B.c, d.err));
    EXPECT_CLOSE("spmm X^T*C", rel_diff(&d, &B), tol);

    /* gemm, all four transpositions, on views */
    REQUIRE(twin_rand(&d, m, k, -1, 1, &A) == 0);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            struct twin P, R, O;
            int64_t pr = ta ? 7 : 9, pc = ta ? 9 : 7; /* op(P) 9 x 7 */
            int64_t rr = tb ? 5 : 7, rc = tb ? 7 : 5; /* op(R) 7 x 5 */
            REQUIRE(twin_rand(&d, pr, pc, -1, 1, &P) == 0);
            REQUIRE(twin_rand(&d, rr, rc, -1, 1, &R) == 0);
            REQUIRE(twin_rand(&d, 12, 6, -1, 1, &O) == 0);
            struct tm_bmat og = tm_bmat_block(&O.g, 2, 9, 1, 5),
                           oc = tm_bmat_block(&O.c, 2, 9, 1, 5);
            BOTH(&d, d.g->gemm(d.gctx, ta, tb, 0.7, &P.g, &R.g, 0.3, &og, d.err),
                 d.c->gemm(d.cctx, ta, tb, 0.7, &P.c, &R.c, 0.3, &oc, d.err));
            EXPECT_CLOSE("gemm", rel_diff(&d, &O), tol);
            twin_free(&d, &P);
            twin_free(&d, &R);
            twin_free(&d, &O);
        }

    /* gram */
    REQUIRE(twin_new(&d, k, k, NULL, &G) == 0);
    BOTH(&d, d.g->gram(d.gctx, &A.g, &G.g, d.err), d.c->gram(d.cctx, &A.c, &G.c, d.err));
    EXPECT_CLOSE("gram", rel_diff(&d, &G), tol);

    /* orth_qr / orth_lu */
    REQUIRE(twin_rand(&d, m, k, -1, 1, &Q) == 0);
    BOTH(&d, d.g->orth_qr(d.gctx, &Q.g, d.err), d.c->orth_qr(d.cctx, &Q.c, d.err));
    EXPECT_CLOSE("orth_qr (up to signs)", sign_free_diff(&d, &Q), tol);
    twin_free(&d, &Q);
    REQUIRE(twin_rand(&d, m, k, -1, 1, &Q) == 0);
    BOTH(&d, d.g->orth_lu(d.gctx, &Q.g, d.err), d.c->orth_lu(d.cctx, &Q.c, d.err));
    EXPECT_CLOSE("orth_lu", rel_diff(&d, &Q), tol * 10);
    twin_free(&d, &Q);

    /* svd_small, tall and wide */
    for (int wide = 0; wide < 2; wide++) {
        int64_t r = wide ? 9 : 40, c = wide ? 40 : 9, p = 9;
        struct twin S, U, V;
        double sg[9], sc[9];
        REQUIRE(twin_rand(&d, r, c, -1, 1, &S) == 0);
        REQUIRE(twin_new(&d, r, p, NULL, &U) == 0);
        REQUIRE(twin_new(&d, p, c, NULL, &V) == 0);
        BOTH(&d, d.g->svd_small(d.gctx, &S.g, &U.g, sg, &V.g, d.err),
             d.c->svd_small(d.cctx, &S.c, &U.c, sc, &V.c, d.err));
        scalars_close(t, "singular values", sg, sc, p, tol);
        EXPECT_CLOSE("svd U (up to signs)", sign_free_diff(&d, &U), tol * 10);
        twin_free(&d, &S);
        twin_free(&d, &U);
        twin_free(&d, &V);
    }

    /* fill, copy into a view, scale_cols, axpy, dot, col_norms, col_sums */
    REQUIRE(twin_new(&d, m, k, NULL, &M1) == 0);
    BOTH(&d, d.g->fill(d.gctx, &M1.g, 0.25, d.err), d.c->fill(d.cctx, &M1.c, 0.25, d.err));
    {
        struct tm_bmat vg = tm_bmat_cols(&M1.g, 2, 5), vc = tm_bmat_cols(&M1.c, 2, 5);
        struct tm_bmat ag = tm_bmat_cols(&A.g, 0, 5), ac = tm_bmat_cols(&A.c, 0, 5);
        BOTH(&d, d.g->copy(d.gctx, &ag, &vg, d.err), d.c->copy(d.cctx, &ac, &vc, d.err));
    }
    EXPECT_CLOSE("fill + copy", rel_diff(&d, &M1), tol);
    {
        double sc[12];
        for (int j = 0; j < k; j++)
            sc[j] = 0.5 + j;
        BOTH(&d, d.g->scale_cols(d.gctx, &M1.g, sc, d.err),
             d.c->scale_cols(d.cctx, &M1.c, sc, d.err));
        EXPECT_CLOSE("scale_cols", rel_diff(&d, &M1), tol);
    }
    BOTH(&d, d.g->axpy(d.gctx, -0.3, &A.g, &M1.g, d.err),
         d.c->axpy(d.cctx, -0.3, &A.c, &M1.c, d.err));
    EXPECT_CLOSE("axpy", rel_diff(&d, &M1), tol);
    {
        double dg = 0, dc = 0, ng[12], nc[12];
        BOTH(&d, d.g->dot(d.gctx, &A.g, &M1.g, &dg, d.err),
             d.c->dot(d.cctx, &A.c, &M1.c, &dc, d.err));
        scalars_close(t, "dot", &dg, &dc, 1, tol);
        BOTH(&d, d.g->col_norms(d.gctx, &M1.g, ng, d.err),
             d.c->col_norms(d.cctx, &M1.c, nc, d.err));
        scalars_close(t, "col_norms", ng, nc, k, tol);
        BOTH(&d, d.g->col_sums(d.gctx, &M1.g, ng, d.err), d.c->col_sums(d.cctx, &M1.c, nc, d.err));
        scalars_close(t, "col_sums", ng, nc, k, tol);
    }

    /* NMF: W (m x k), Ht (n x k) non-negative */
    REQUIRE(twin_rand(&d, m, k, 0, 1, &W) == 0);
    REQUIRE(twin_rand(&d, n, k, 0, 1, &Ht) == 0);
    REQUIRE(twin_new(&d, m, k, NULL, &XHt) == 0);
    BOTH(&d, d.g->gram(d.gctx, &Ht.g, &G.g, d.err), d.c->gram(d.cctx, &Ht.c, &G.c, d.err));
    BOTH(&d, d.g->spmm(d.gctx, gx, TM_NOTRANS, 1.0, &Ht.g, 0.0, &XHt.g, d.err),
         d.c->spmm(d.cctx, cx, TM_NOTRANS, 1.0, &Ht.c, 0.0, &XHt.c, d.err));
    {
        int64_t perm[12];
        double vg = 0, vc = 0;
        for (int j = 0; j < k; j++)
            perm[j] = (j * 5) % k; /* 5 is coprime to 12 */
        BOTH(&d, d.g->hals_sweep(d.gctx, &W.g, &G.g, &XHt.g, 0.01, 0.02, perm, &vg, d.err),
             d.c->hals_sweep(d.cctx, &W.c, &G.c, &XHt.c, 0.01, 0.02, perm, &vc, d.err));
        EXPECT_CLOSE("hals_sweep W", rel_diff(&d, &W), tol * 10);
        scalars_close(t, "hals violation", &vg, &vc, 1, tol * 10);
        BOTH(&d, d.g->hals_sweep(d.gctx, &W.g, &G.g, &XHt.g, 0, 0, NULL, &vg, d.err),
             d.c->hals_sweep(d.cctx, &W.c, &G.c, &XHt.c, 0, 0, NULL, &vc, d.err));
        EXPECT_CLOSE("hals_sweep W (no perm)", rel_diff(&d, &W), tol * 10);
    }
    REQUIRE(twin_rand(&d, m, k, 0, 1, &M2) == 0);
    REQUIRE(twin_rand(&d, m, k, 0.1, 1, &S1) == 0);
    BOTH(&d, d.g->mu_update(d.gctx, &M2.g, &XHt.g, &S1.g, NULL, 0.01, 0.02, 1e-3, d.err),
         d.c->mu_update(d.cctx, &M2.c, &XHt.c, &S1.c, NULL, 0.01, 0.02, 1e-3, d.err));
    EXPECT_CLOSE("mu_update (denom)", rel_diff(&d, &M2), tol);
    {
        double row[12];
        for (int j = 0; j < k; j++)
            row[j] = j == 3 ? 0.0 : 0.5 + 0.1 * j; /* a zero: scikit-learn's EPSILON */
        BOTH(&d, d.g->mu_update(d.gctx, &M2.g, &XHt.g, NULL, row, 0, 0, 0, d.err),
             d.c->mu_update(d.cctx, &M2.c, &XHt.c, NULL, row, 0, 0, 0, d.err));
        EXPECT_CLOSE("mu_update (row)", rel_diff(&d, &M2), tol);
    }
    {
        struct twin MG;
        REQUIRE(twin_new(&d, m, k, NULL, &MG) == 0);
        BOTH(&d, d.g->gemm(d.gctx, 0, 0, 1.0, &W.g, &G.g, 0.0, &MG.g, d.err),
             d.c->gemm(d.cctx, 0, 0, 1.0, &W.c, &G.c, 0.0, &MG.c, d.err));
        BOTH(&d, d.g->pgd_update(d.gctx, &W.g, &MG.g, &XHt.g, 1e-3, 1e3, 1e-6, d.err),
             d.c->pgd_update(d.cctx, &W.c, &MG.c, &XHt.c, 1e-3, 1e3, 1e-6, d.err));
        EXPECT_CLOSE("pgd_update", rel_diff(&d, &W), tol * 10);
        twin_free(&d, &MG);
    }
    {
        struct twin XtW;
        double kg = 0, kc = 0;
        REQUIRE(twin_new(&d, n, k, NULL, &XtW) == 0);
        BOTH(&d, d.g->kl_spmm(d.gctx, gx, TM_NOTRANS, &W.g, &Ht.g, 1e-10, &XHt.g, d.err),
             d.c->kl_spmm(d.cctx, cx, TM_NOTRANS, &W.c, &Ht.c, 1e-10, &XHt.c, d.err));
        EXPECT_CLOSE("kl_spmm", rel_diff(&d, &XHt), tol * 10);
        BOTH(&d, d.g->kl_spmm(d.gctx, gx, TM_TRANS, &Ht.g, &W.g, 1e-10, &XtW.g, d.err),
             d.c->kl_spmm(d.cctx, cx, TM_TRANS, &Ht.c, &W.c, 1e-10, &XtW.c, d.err));
        EXPECT_CLOSE("kl_spmm (trans)", rel_diff(&d, &XtW), tol * 10);
        BOTH(&d, d.g->kl_sum(d.gctx, gx, &W.g, &Ht.g, 1e-10, &kg, d.err),
             d.c->kl_sum(d.cctx, cx, &W.c, &Ht.c, 1e-10, &kc, d.err));
        scalars_close(t, "kl_sum", &kg, &kc, 1, tol * 10);
        twin_free(&d, &XtW);
    }
    BOTH(&d, d.g->sync(d.gctx, d.err), d.c->sync(d.cctx, d.err));

    twin_free(&d, &S1);
    twin_free(&d, &M2);
    twin_free(&d, &M1);
    twin_free(&d, &XHt);
    twin_free(&d, &Ht);
    twin_free(&d, &W);
    twin_free(&d, &G);
    twin_free(&d, &A);
    twin_free(&d, &C);
    twin_free(&d, &B);
    d.g->sparse_free(d.gctx, gx);
    d.c->sparse_free(d.cctx, cx);
    tm_csr_release(&x);
    duo_close(&d);
}

TM_TEST(gpu_primitives_float32_match_cpu)
{
    NEED_GPU(ops);
    primitives(t, ops, TM_DTYPE_FLOAT32);
}

TM_TEST(gpu_primitives_float64_match_cpu)
{
    NEED_GPU(ops);
    primitives(t, ops, TM_DTYPE_FLOAT64);
}

/* A planted non-negative rank-5 structure, made sparse: 600 x 400. */
static tm_status planted(struct tm_csr *x)
{
    const int64_t m = 600, n = 400, r = 5;
    double *w = rand_host(m * r, 0, 1), *h = rand_host(r * n, 0, 1);
    int64_t cap = m * n / 4 + m, nnz = 0;
    tm_status st = tm_csr_init(x, m, n, cap, NULL);
    if (st == TM_OK) {
        for (int64_t i = 0; i < m; i++) {
            int64_t topic = i % r;
            for (int64_t j = 0; j < n && nnz < cap; j++) {
                if ((j % r) != topic && urand() > 0.1)
                    continue;
                double v = 0.0;
                for (int64_t q = 0; q < r; q++)
                    v += w[i + q * m] * h[q + j * r] * (q == topic ? 3.0 : 0.1);
                x->indices[nnz] = (int32_t)j;
                x->data[nnz++] = v;
            }
            x->indptr[i + 1] = nnz;
        }
    }
    free(w);
    free(h);
    return st;
}

static tm_status fit_on(const struct tm_csr *x, struct tm_model_params *p, enum tm_device dev,
                        struct tm_fit_result *res, char *err)
{
    p->device = dev;
    return tm_fit(dev == TM_DEVICE_GPU ? tm_gpu_load(NULL) : NULL, NULL, x, p, NULL, res, err);
}

TM_TEST(gpu_fit_svd_matches_cpu)
{
    NEED_GPU(ops);
    (void)ops;
    struct tm_csr x = {0};
    struct tm_model_params p;
    struct tm_fit_result g = {0}, c = {0};
    char err[TM_ERR_SIZE] = "";
    REQUIRE(planted(&x) == TM_OK);
    tm_model_params_init(&p);
    p.method = TM_METHOD_TRUNCATED_SVD;
    p.n_topics = 10;
    p.seed = 7;
    CHECK_INT_EQ(fit_on(&x, &p, TM_DEVICE_GPU, &g, err), TM_OK);
    CHECK_INT_EQ(fit_on(&x, &p, TM_DEVICE_CPU, &c, err), TM_OK);
    if (g.singular_values && c.singular_values) {
        CHECK_STR_EQ(g.device_used, "cuda");
        for (int i = 0; i < 10; i++)
            CHECK_NEAR(g.singular_values[i] / c.singular_values[i], 1.0, 1e-4);
    }
    tm_fit_result_release(&g);
    tm_fit_result_release(&c);
    /* float64 on the GPU: agreement to near machine precision. */
    p.dtype = TM_DTYPE_FLOAT64;
    CHECK_INT_EQ(fit_on(&x, &p, TM_DEVICE_GPU, &g, err), TM_OK);
    CHECK_INT_EQ(fit_on(&x, &p, TM_DEVICE_CPU, &c, err), TM_OK);
    if (g.singular_values && c.singular_values)
        for (int i = 0; i < 10; i++)
            CHECK_NEAR(g.singular_values[i] / c.singular_values[i], 1.0, 1e-9);
    tm_fit_result_release(&g);
    tm_fit_result_release(&c);
    /* The accurate algorithm. */
    p.dtype = TM_DTYPE_AUTO;
    p.algorithm = TM_SVD_LANCZOS;
    CHECK_INT_EQ(fit_on(&x, &p, TM_DEVICE_GPU, &g, err), TM_OK);
    CHECK_INT_EQ(fit_on(&x, &p, TM_DEVICE_CPU, &c, err), TM_OK);
    if (g.singular_values && c.singular_values)
        for (int i = 0; i < 10; i++)
            CHECK_NEAR(g.singular_values[i] / c.singular_values[i], 1.0, 1e-4);
    tm_fit_result_release(&g);
    tm_fit_result_release(&c);
    tm_csr_release(&x);
}

TM_TEST(gpu_fit_nmf_matches_cpu)
{
    NEED_GPU(ops);
    (void)ops;
    struct tm_csr x = {0};
    char err[TM_ERR_SIZE] = "";
    REQUIRE(planted(&x) == TM_OK);
    enum tm_nmf_solver solvers[] = {TM_NMF_CD, TM_NMF_MU, TM_NMF_MU, TM_NMF_PGD};
    enum tm_beta_loss losses[] = {TM_BETA_FROBENIUS, TM_BETA_FROBENIUS, TM_BETA_KL,
                                  TM_BETA_FROBENIUS};
    for (int s = 0; s < 4; s++) {
        struct tm_model_params p;
        struct tm_fit_result g = {0}, c = {0};
        tm_model_params_init(&p);
        p.method = TM_METHOD_NMF;
        p.n_topics = 5;
        p.seed = 1;
        p.solver = solvers[s];
        p.beta_loss = losses[s];
        p.max_iter = 100;
        tm_status sg = fit_on(&x, &p, TM_DEVICE_GPU, &g, err);
        if (sg != TM_OK)
            fprintf(stderr, "  gpu nmf solver %d: %s\n", s, err);
        tm_status sc = fit_on(&x, &p, TM_DEVICE_CPU, &c, err);
        CHECK_INT_EQ(sg, TM_OK);
        CHECK_INT_EQ(sc, TM_OK);
        if (sg == TM_OK && sc == TM_OK) {
            CHECK_NEAR(g.reconstruction_error / c.reconstruction_error, 1.0, 5e-3);
            /* Same top word for each topic (planted, well separated). */
            int same = 0;
            for (int q = 0; q < 5; q++)
                for (int r = 0; r < 5; r++)
                    same += g.top_terms[q * g.n_top_words] == c.top_terms[r * c.n_top_words];
            if (s != 3) /* pgd's fixed steps are not sharp enough for this */
                CHECK_INT_EQ(same, 5);
        }
        tm_fit_result_release(&g);
        tm_fit_result_release(&c);
    }
    tm_csr_release(&x);
}

struct worker {
    const struct tm_backend_ops *ops;
    const struct tm_csr *x;
    void *ctx;
    double error;
    tm_status st;
    char err[TM_ERR_SIZE];
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct tm_model_params p;
    struct tm_fit_result r = {0};
    tm_model_params_init(&p);
    p.n_topics = 5;
    p.seed = 3;
    p.max_iter = 50;
    p.device = TM_DEVICE_GPU;
    w->st = tm_fit(w->ops, w->ctx, w->x, &p, NULL, &r, w->err);
    w->error = r.reconstruction_error;
    tm_fit_result_release(&r);
    return NULL;
}

TM_TEST(gpu_contexts_share_the_device)
{
    NEED_GPU(ops);
    struct tm_csr x = {0};
    struct worker w[4];
    pthread_t th[4];
    struct tm_backend_config cfg = {TM_DTYPE_FLOAT32, 0, 0};
    REQUIRE(planted(&x) == TM_OK);
    memset(w, 0, sizeof(w));
    for (int i = 0; i < 4; i++) {
        w[i].ops = ops;
        w[i].x = &x;
        REQUIRE(ops->create(&cfg, &w[i].ctx, w[i].err) == TM_OK);
    }
    worker_main(&w[0]); /* alone first: the reference */
    double ref = w[0].error;
    CHECK_INT_EQ(w[0].st, TM_OK);
    for (int i = 0; i < 4; i++)
        REQUIRE(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT_EQ(w[i].st, TM_OK);
        /* Deterministic reductions: the same bits whatever runs beside. */
        CHECK(w[i].error == ref);
    }
    for (int i = 0; i < 4; i++)
        ops->destroy(w[i].ctx);
    tm_csr_release(&x);
}

TM_TEST(gpu_out_of_memory_is_an_error)
{
    NEED_GPU(ops);
    struct tm_backend_config cfg = {TM_DTYPE_FLOAT32, 0, 0};
    void *ctx = NULL;
    struct tm_bmat huge, small;
    char err[TM_ERR_SIZE] = "";
    REQUIRE(ops->create(&cfg, &ctx, err) == TM_OK);
    /* 2^22 x 2^22 floats = 64 TiB: no GPU has that. */
    CHECK_INT_EQ(ops->mat_alloc(ctx, (int64_t)1 << 22, (int64_t)1 << 22, &huge, err), TM_ENOMEM);
    CHECK(strstr(err, "out of memory") != NULL);
    CHECK(huge.data == NULL);
    /* The context still works afterwards. */
    CHECK_INT_EQ(ops->mat_alloc(ctx, 100, 10, &small, err), TM_OK);
    CHECK_INT_EQ(ops->fill(ctx, &small, 1.0, err), TM_OK);
    double sums[10];
    CHECK_INT_EQ(ops->col_sums(ctx, &small, sums, err), TM_OK);
    CHECK_NEAR(sums[9], 100.0, 1e-6);
    ops->mat_free(ctx, &small);
    ops->destroy(ctx);
    /* The estimate grows with the job and is what admission uses. */
    struct tm_model_params p;
    tm_model_params_init(&p);
    p.n_topics = 20;
    size_t small_b = tm_fit_device_bytes(ops, &p, 1000, 1000, 10000);
    size_t big_b = tm_fit_device_bytes(ops, &p, 100000, 100000, 10000000);
    CHECK(small_b > 0);
    CHECK(big_b > 50 * small_b);
    p.dtype = TM_DTYPE_FLOAT64;
    CHECK(tm_fit_device_bytes(ops, &p, 100000, 100000, 10000000) > big_b);
}
