/*
 * cli.c - the `topicd vectorize` and `topicd fit` subcommands: read a corpus
 * (file or stdin), a job spec, run core, print the JSON that api/ renders;
 * and `topicd store copy`, which moves a SQLite store into PostgreSQL
 * (store_copy.c); `topicd keys`, the API keys (keys.h). `topicd serve`
 * lives in serve.c.
 *
 * Exit status: 0 success, 1 the job failed (invalid spec or input, numerical
 * failure; one line "topicd: <field>: <message>" on stderr), 2 usage error.
 */
#include "cli.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/apply.h"
#include "api/corpus.h"
#include "api/exports.h"
#include "api/json.h"
#include "api/mmio.h"
#include "api/model_file.h"
#include "api/result.h"
#include "api/spec.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/fit.h"
#include "core/sweep.h"
#include "core/text/coherence.h"
#include "core/text/vectorize.h"
#include "cpus.h"
#include "gpu/gpu.h"
#include "keys.h"
#include "progress_bar.h"
#include "store.h"
#include "store_copy.h"

enum { EXIT_JOB = 1, EXIT_USAGE = 2, EXIT_INTERRUPTED = 130 };

struct cli_opts {
    const char *spec_text;
    const char *spec_file;
    int format; /* enum tm_corpus_format */
    int summary;
    const char *mm_out;
    const char *mm_in;
    const char *vocab_file;
    const char *csv_dir;    /* fit --csv-dir: api/exports.h's files go there */
    const char *save_model; /* fit --save-model FILE */
    const char *model_file; /* transform --model FILE */
    int threads;            /* 0: every CPU the process may use */
    int progress;           /* --progress: stages and fractions on stderr, also to a log */
    int quiet;              /* --quiet: no progress at all */
    const char *input;
};

static const char vectorize_help[] =
    "usage: topicd vectorize [options] INPUT|-\n"
    "\n"
    "Turn documents into a TF-IDF (or count) matrix, exactly as scikit-learn's\n"
    "TfidfVectorizer, and print a JSON summary: n_documents, n_features, nnz,\n"
    "vocabulary, document_frequencies, idf, timings.\n"
    "\n"
    "options:\n"
    "  --spec JSON          the job spec (only preprocess and vectorizer are used)\n"
    "  --spec-file FILE     read the job spec from FILE\n"
    "  --format FMT         jsonl (a \"text\" field per line), json (an array of strings\n"
    "                       or of {\"id\",\"text\"}, or {\"documents\":[...]}), lines (one\n"
    "                       document per line). Default: by extension (.jsonl, .ndjson,\n"
    "                       .json), else by content ('[' -> json, else jsonl)\n"
    "  --summary            print only the first and last 10 terms\n"
    "  --matrix-market OUT  also write the matrix to OUT (Matrix Market coordinate)\n"
    "  --threads N          threads to use (default: the CPUs it may use)\n"
    "  --progress           progress lines on standard error when it is not a\n"
    "                       terminal (a terminal always gets a progress bar)\n"
    "  --quiet              no progress at all\n"
    "  --help               this help\n"
    "\n"
    "INPUT '-' reads standard input. Without INPUT, the spec's \"documents\" are used.\n"
    "Exit status: 0 ok, 1 the job failed, 2 usage error, 130 interrupted (SIGINT\n"
    "stops the job at its next progress check).\n";

static const char fit_help[] =
    "usage: topicd fit [options] INPUT|-\n"
    "       topicd fit [options] --matrix-market-in FILE [--vocabulary FILE]\n"
    "\n"
    "Vectorize the documents and factorize the matrix into topics as the spec's\n"
    "\"model\" says; print the job result JSON (the document GET\n"
    "/v1/jobs/{id}/result serves).\n"
    "\n"
    "options:\n"
    "  --spec JSON             the job spec; it must have a \"model\"\n"
    "  --spec-file FILE        read the job spec from FILE\n"
    "  --format FMT            jsonl, json or lines (see topicd vectorize --help)\n"
    "  --matrix-market OUT     also write the vectorized matrix to OUT\n"
    "  --matrix-market-in FILE factorize this matrix instead of vectorizing INPUT\n"
    "  --vocabulary FILE       with --matrix-market-in: its terms, one per line\n"
    "  --csv-dir DIR           also write DIR/topic-terms.csv (topic,term,weight:\n"
    "                          each topic's top n_top_words terms, in order) and\n"
    "                          DIR/document-topics.csv (document_id,topic,weight:\n"
    "                          a row per document and topic; a document without\n"
    "                          an id is named by its index), as the server's\n"
    "                          GET /v1/jobs/{id}/topic-terms.csv and\n"
    "                          document-topics.csv; DIR is made if missing\n"
    "  --save-model FILE       also write the fitted model to FILE, the .npz GET\n"
    "                          /v1/jobs/{id}/model serves (numpy.load opens it)\n"
    "  --threads N             threads to use (default: the CPUs it may use)\n"
    "  --progress              progress lines on standard error when it is not a\n"
    "                          terminal (a terminal always gets a progress bar)\n"
    "  --quiet                 no progress at all\n"
    "  --help                  this help\n"
    "\n"
    "Exit status: 0 ok, 1 the job failed, 2 usage error, 130 interrupted (SIGINT\n"
    "stops the job at its next progress check).\n";

/* The command's progress bar, ended before any other line is written to
 * standard error or the result to standard output (a bar has no newline). */
static struct tm_progress_bar *active_bar;

static void end_progress(void)
{
    if (active_bar)
        tm_progress_bar_finish(active_bar);
}

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    end_progress();
    fprintf(stderr, "topicd %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see topicd %s --help)\n", cmd);
    return EXIT_USAGE;
}

/*
 * Ctrl-C cancels through core's progress callback (core stops at its next
 * check and releases what it took); a second Ctrl-C kills as usual.
 */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
    signal(SIGINT, SIG_DFL);
}

/* Core serialises calls to one tm_progress, so no lock is needed here. */
static int report_progress(void *ctx, const char *stage, double fraction)
{
    tm_progress_bar_update(ctx, stage, fraction, tm_clock_monotonic());
    return interrupted ? 1 : 0;
}

static int job_error(const struct tm_api_error *e)
{
    end_progress();
    char buf[512];
    fprintf(stderr, "topicd: %s\n", tm_api_error_format(e, buf, sizeof(buf)));
    return EXIT_JOB;
}

/* "topicd: <what>: <message>" for errors outside a spec or corpus. */
static int fail_msg(const char *what, const char *msg)
{
    end_progress();
    fprintf(stderr, "topicd: %s: %s\n", what, msg);
    return EXIT_JOB;
}

static int core_error(const char *what, tm_status st, const char *err)
{
    end_progress();
    if (st == TM_ECANCELLED) {
        fprintf(stderr, "topicd: interrupted\n");
        return EXIT_INTERRUPTED;
    }
    if (!err[0])
        return fail_msg(what, tm_strerror(st));
    /* core names the parameter itself ("model.n_topics: ..."): say it once. */
    size_t n = strlen(what);
    if (!strncmp(err, what, n) && (err[n] == '.' || err[n] == ':')) {
        fprintf(stderr, "topicd: %s\n", err);
        return EXIT_JOB;
    }
    return fail_msg(what, err);
}

static const char transform_help[] =
    "usage: topicd transform --model FILE [options] INPUT|-\n"
    "\n"
    "Apply a fitted model to new documents: vectorize them with the model's own\n"
    "vocabulary and idf (words it does not know are ignored) and solve for their\n"
    "topic weights with the fit's components fixed, as scikit-learn's fitted\n"
    "vectorizer and model transform them; print\n"
    "{\"n_documents\", \"n_topics\", \"document_topics\": [[...], ...]} in the\n"
    "documents' order, with \"ids\" when the input has them.\n"
    "\n"
    "options:\n"
    "  --model FILE         the model: an .npz of `topicd fit --save-model` or of\n"
    "                       GET /v1/jobs/{id}/model (required)\n"
    "  --format FMT         jsonl, json or lines (see topicd vectorize --help)\n"
    "  --threads N          threads to use (default: the CPUs it may use)\n"
    "  --progress           progress lines on standard error when it is not a\n"
    "                       terminal (a terminal always gets a progress bar)\n"
    "  --quiet              no progress at all\n"
    "  --help               this help\n"
    "\n"
    "INPUT '-' reads standard input. NMF models run the fit's solver with H fixed\n"
    "(hals and pgd models run cd's, minibatch ones MiniBatchNMF.transform); SVD\n"
    "models give X V. A model's device \"gpu\"\n"
    "runs it on the GPU plugin.\n"
    "Exit status: 0 ok, 1 the job failed, 2 usage error, 130 interrupted (SIGINT\n"
    "stops the job at its next progress check).\n";

enum cli_command { CLI_VECTORIZE, CLI_FIT, CLI_TRANSFORM };

/* The commands' options (each takes its own); -1 on a usage error (already
 * printed), 1 when help was printed. */
static int parse_args(const char *cmd, int argc, char **argv, struct cli_opts *o,
                      enum cli_command which)
{
    const int is_fit = which == CLI_FIT, is_transform = which == CLI_TRANSFORM;
    memset(o, 0, sizeof(*o));
    o->format = TM_CORPUS_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char name[32];
        if (a[0] != '-' || !strcmp(a, "-")) {
            if (o->input) {
                usage_error(cmd, "more than one INPUT ('%s')", a);
                return -1;
            }
            o->input = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            if (i + 1 < argc && !o->input)
                o->input = argv[++i];
            if (i + 1 < argc) {
                usage_error(cmd, "unexpected argument '%s'", argv[i + 1]);
                return -1;
            }
            break;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(is_fit ? fit_help : is_transform ? transform_help : vectorize_help, stdout);
            return 1;
        }
        if (!strcmp(a, "--summary") && which == CLI_VECTORIZE) {
            o->summary = 1;
            continue;
        }
        if (!strcmp(a, "--progress")) {
            o->progress = 1;
            continue;
        }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o->quiet = 1;
            continue;
        }
        /* --name VALUE or --name=VALUE */
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen >= sizeof(name)) {
            usage_error(cmd, "unknown option '%s'", a);
            return -1;
        }
        memcpy(name, a, nlen);
        name[nlen] = '\0';
        int takes =
            !strcmp(name, "--format") || !strcmp(name, "--threads") ||
            (!is_transform && (!strcmp(name, "--spec") || !strcmp(name, "--spec-file") ||
                               !strcmp(name, "--matrix-market"))) ||
            (is_fit && (!strcmp(name, "--matrix-market-in") || !strcmp(name, "--vocabulary") ||
                        !strcmp(name, "--csv-dir") || !strcmp(name, "--save-model"))) ||
            (is_transform && !strcmp(name, "--model"));
        if (!takes) {
            usage_error(cmd, "unknown option '%s'", a);
            return -1;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            usage_error(cmd, "option '%s' needs a value", a);
            return -1;
        }
        if (!strcmp(name, "--spec")) {
            o->spec_text = val;
        } else if (!strcmp(name, "--spec-file")) {
            o->spec_file = val;
        } else if (!strcmp(name, "--format")) {
            o->format = tm_corpus_format_from_name(val);
            if (o->format < 0) {
                usage_error(cmd, "--format must be jsonl, json or lines, not '%s'", val);
                return -1;
            }
        } else if (!strcmp(name, "--matrix-market")) {
            o->mm_out = val;
        } else if (!strcmp(name, "--matrix-market-in")) {
            o->mm_in = val;
        } else if (!strcmp(name, "--vocabulary")) {
            o->vocab_file = val;
        } else if (!strcmp(name, "--csv-dir")) {
            o->csv_dir = val;
        } else if (!strcmp(name, "--save-model")) {
            o->save_model = val;
        } else if (!strcmp(name, "--model")) {
            o->model_file = val;
        } else if (!strcmp(name, "--threads")) {
            char *end;
            errno = 0;
            long n = strtol(val, &end, 10);
            if (*end || errno || n < 1 || n > 1024) {
                usage_error(cmd, "--threads must be an integer in [1, 1024], not '%s'", val);
                return -1;
            }
            o->threads = (int)n;
        }
    }
    if (o->spec_text && o->spec_file) {
        usage_error(cmd, "%s", "give --spec or --spec-file, not both");
        return -1;
    }
    if (o->vocab_file && !o->mm_in) {
        usage_error(cmd, "%s", "--vocabulary goes with --matrix-market-in");
        return -1;
    }
    if (o->mm_in && o->input) {
        usage_error(cmd, "%s", "give INPUT or --matrix-market-in, not both");
        return -1;
    }
    if (o->save_model && o->mm_in) {
        usage_error(cmd, "%s",
                    "--save-model needs documents: a --matrix-market-in matrix has no vectorizer"
                    " to save");
        return -1;
    }
    if (is_transform && !o->model_file) {
        usage_error(cmd, "%s", "--model FILE is required");
        return -1;
    }
    if (is_transform && !o->input) {
        usage_error(cmd, "%s", "no INPUT (use '-' for standard input)");
        return -1;
    }
    return 0;
}

/* Threads of core's own loops (tokenizing, sparse products, NMF updates):
 * --threads, or every CPU this process may use. */
static int setup_threads(int requested)
{
    return requested > 0 ? requested : tm_cpus_available();
}

/*
 * OpenBLAS's thread count, set once before the fit (the vectorizer never
 * calls BLAS). The truncated SVDs and NMF do their heavy work in core's own
 * threads, and OpenBLAS's idle threads spin (sched_yield) for a while after
 * each call, so they take cores from the next sparse product: with one
 * OpenBLAS thread every such fit measured as fast or faster (bench/NOTES.md,
 * "OpenBLAS on one thread"). full_svd is LAPACK from end to end and gets
 * every thread.
 * OPENBLAS_NUM_THREADS, when set, wins (the test suite pins it to 1), as
 * OpenBLAS has applied it at load time; --threads does not override it.
 */
static void setup_blas_threads(enum tm_method method, int threads)
{
    if (!getenv("OPENBLAS_NUM_THREADS"))
        openblas_set_num_threads(method == TM_METHOD_FULL_SVD ? threads : 1);
}

/*
 * OpenBLAS (the pthread build) starts its worker threads when it is loaded,
 * before main, and each spins on sched_yield for about 2^28 cycles (0.1 s)
 * waiting for a first call. A subcommand's first tenth of a second is
 * reading and vectorizing on every core, so that spin took a core's share
 * from them (bench/NOTES.md, "OpenBLAS's spin at load").
 * blas_thread_shutdown_ stops and joins them; OpenBLAS starts them again
 * at its first threaded call (exec_blas starts the pool when it is down, as
 * after a fork). Weak: another BLAS (or an OpenBLAS without the symbol)
 * links and skips it.
 */
extern int blas_thread_shutdown_(void) __attribute__((weak));

static void stop_idle_blas_threads(void)
{
    if (blas_thread_shutdown_)
        blas_thread_shutdown_();
}

/*
 * The backend for the spec's device, *ops NULL meaning the CPU: "gpu" gets
 * the CUDA plugin's (gpu/gpu.h), "cpu" and "auto" the CPU (the CLI has no GPU
 * manager to weigh a job, as the server's does for "auto"), and full_svd,
 * dense LAPACK on the host, never asks. No GPU for "gpu" is TM_ENODEV, *what
 * "device" (the spec's top-level field), but a bad model is reported first,
 * as tm_fit would, *what "model".
 */
static tm_status fit_backend(const struct tm_csr *X, const struct tm_model_params *p,
                             const struct tm_backend_ops **ops, const char **what, char *err)
{
    *ops = NULL;
    *what = "model";
    if (p->device != TM_DEVICE_GPU || p->method == TM_METHOD_FULL_SVD)
        return TM_OK;
    if ((*ops = tm_gpu_load(NULL)) != NULL)
        return TM_OK;
    tm_status st = tm_fit_validate(X, p, err);
    if (st != TM_OK)
        return st;
    *what = "device";
    return tm_errf(err, TM_ENODEV, "no GPU backend in this build");
}

/* Reads all of path ("-": stdin) into *out (tm_free), up to cap bytes. */
static tm_status read_all(const char *path, size_t cap, char **out, size_t *len, char *err)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    char *buf = NULL;
    size_t n = 0, alloc = 0;
    tm_status st = TM_OK;
    *out = NULL;
    *len = 0;
    if (!f)
        return tm_errf(err, TM_EIO, "%s", strerror(errno));
    for (;;) {
        if (alloc - n < 65536) {
            size_t a = alloc ? alloc * 2 : 1 << 20;
            char *nb = tm_realloc(buf, a + 1);
            if (!nb) {
                st = tm_errf(err, TM_ENOMEM, "out of memory");
                goto out;
            }
            buf = nb;
            alloc = a;
        }
        size_t got = fread(buf + n, 1, alloc - n, f);
        n += got;
        if (n > cap) {
            st = tm_errf(err, TM_ETOOBIG, "larger than the limit of %zu bytes", cap);
            goto out;
        }
        if (got == 0) {
            if (ferror(f))
                st = tm_errf(err, TM_EIO, "%s", strerror(errno));
            break;
        }
    }
out:
    if (f != stdin)
        fclose(f);
    if (st != TM_OK) {
        tm_free(buf);
        return st;
    }
    if (!buf && !(buf = tm_malloc(1)))
        return tm_errf(err, TM_ENOMEM, "out of memory");
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return TM_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static tm_status stream_into_corpus(void *ctx, const struct tm_stream_doc *d,
                                    struct tm_api_error *e)
{
    struct tm_corpus *c = ctx;
    tm_status st = tm_corpus_add(c, d->text, d->text_len, d->id, d->id ? d->id_len : 0, e);
    if (st != TM_OK && e) {
        snprintf(e->field, sizeof(e->field), "line %lld", (long long)d->line);
        e->line = d->line;
    }
    return st;
}

/*
 * Reading a large JSON Lines or lines file in parts at once. Reading and
 * decoding is one thread's work before the vectorizer starts its own, so the
 * file is cut at newlines into one part per thread (each at least
 * LOAD_PART_MIN bytes), each part streamed by pread into a corpus of its
 * own, and the parts appended in order: the same documents as one stream.
 * Any failure re-reads the file as one stream, which words the error (its
 * line numbers count from the start of the file) as it always has.
 */
#define LOAD_PART_MIN ((off_t)1 << 20)
#define LOAD_MAX_PARTS 16

struct load_part {
    int fd, format;
    off_t from, to;
    struct tm_corpus corpus;
    tm_status st;
    struct tm_api_error e; /* unused: a failed part is read again in one stream */
};

static void *load_part_run(void *arg)
{
    struct load_part *p = arg;
    struct tm_doc_stream *s = NULL;
    size_t cap = 1 << 20;
    char *chunk = tm_malloc(cap);
    p->st = chunk ? tm_doc_stream_new(&s, (enum tm_corpus_format)p->format, &p->corpus.limits,
                                      stream_into_corpus, &p->corpus)
                  : TM_ENOMEM;
    for (off_t at = p->from; p->st == TM_OK && at < p->to;) {
        size_t want = p->to - at < (off_t)cap ? (size_t)(p->to - at) : cap;
        ssize_t got = pread(p->fd, chunk, want, at);
        if (got <= 0) {
            p->st = TM_EIO;
            break;
        }
        size_t skip = at == 0 && got >= 3 && !memcmp(chunk, "\xEF\xBB\xBF", 3) ? 3 : 0;
        p->st = tm_doc_stream_feed(s, chunk + skip, (size_t)got - skip, &p->e);
        at += got;
    }
    if (p->st == TM_OK)
        p->st = tm_doc_stream_finish(s, &p->e);
    tm_doc_stream_free(s);
    tm_free(chunk);
    return NULL;
}

/* The part boundaries of fd's size bytes: ends[i] just after a newline;
 * returns how many parts (1: read it whole). */
static int load_split(int fd, off_t size, int parts, off_t *ends)
{
    char buf[4096];
    int n = 0;
    for (int i = 1; i < parts; i++) {
        off_t at = size / parts * i, end = -1;
        if (n && at <= ends[n - 1])
            at = ends[n - 1];
        /* the first newline at or after at, within 1 MiB */
        for (off_t scanned = 0; end < 0 && scanned < ((off_t)1 << 20) && at < size;) {
            ssize_t got = pread(fd, buf, sizeof(buf), at);
            if (got <= 0)
                return 1;
            const char *nl = memchr(buf, '\n', (size_t)got);
            if (nl)
                end = at + (nl - buf) + 1;
            at += got;
            scanned += got;
        }
        if (end < 0 || end >= size)
            break;
        ends[n++] = end;
    }
    ends[n++] = size;
    return n;
}

/* 0 with c filled, or -1: read the file as one stream instead. */
static int load_parallel(const char *path, int format, int threads, struct tm_corpus *c)
{
    struct load_part parts[LOAD_MAX_PARTS];
    pthread_t tid[LOAD_MAX_PARTS];
    int started[LOAD_MAX_PARTS] = {0};
    off_t ends[LOAD_MAX_PARTS];
    struct stat sb;
    int rc = -1, n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
        (uint64_t)sb.st_size > (uint64_t)c->limits.max_total_bytes) {
        close(fd);
        return -1;
    }
    n = threads < LOAD_MAX_PARTS ? threads : LOAD_MAX_PARTS;
    if (n > sb.st_size / LOAD_PART_MIN)
        n = (int)(sb.st_size / LOAD_PART_MIN);
    if (n < 2 || (n = load_split(fd, sb.st_size, n, ends)) < 2) {
        close(fd);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        parts[i] = (struct load_part){.fd = fd, .format = format, .to = ends[i]};
        parts[i].from = i ? ends[i - 1] : 0;
        tm_corpus_init(&parts[i].corpus, &c->limits);
    }
    for (int i = 1; i < n; i++)
        started[i] = pthread_create(&tid[i], NULL, load_part_run, &parts[i]) == 0;
    load_part_run(&parts[0]);
    for (int i = 1; i < n; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            load_part_run(&parts[i]);
    }
    rc = 0;
    for (int i = 0; i < n; i++)
        if (parts[i].st != TM_OK ||
            (rc == 0 && tm_corpus_append_take(c, &parts[i].corpus, NULL) != TM_OK))
            rc = -1;
    for (int i = 0; i < n; i++)
        tm_corpus_release(&parts[i].corpus);
    if (rc != 0)
        tm_corpus_release(c);
    close(fd);
    return rc;
}

/* JSON Lines and plain lines are read in chunks (one copy of the text in
 * memory), a large file in parts at once (load_parallel); JSON, and input
 * whose format must be sniffed, whole. */
static int load_corpus(const struct cli_opts *o, struct tm_corpus *c)
{
    struct tm_api_error e;
    char err[TM_ERR_SIZE];
    int format = o->format;
    tm_status st;
    if (format == TM_CORPUS_AUTO && strcmp(o->input, "-") != 0) {
        if (ends_with(o->input, ".jsonl") || ends_with(o->input, ".ndjson"))
            format = TM_CORPUS_JSONL;
        else if (ends_with(o->input, ".json"))
            format = TM_CORPUS_JSON;
    }
    if ((format == TM_CORPUS_JSONL || format == TM_CORPUS_LINES) && strcmp(o->input, "-") != 0 &&
        load_parallel(o->input, format, setup_threads(o->threads), c) == 0)
        return 0;
    if (format == TM_CORPUS_JSONL || format == TM_CORPUS_LINES) {
        FILE *f = strcmp(o->input, "-") ? fopen(o->input, "rb") : stdin;
        if (!f)
            return fail_msg(o->input, strerror(errno));
        struct tm_doc_stream *s;
        st =
            tm_doc_stream_new(&s, (enum tm_corpus_format)format, &c->limits, stream_into_corpus, c);
        if (st != TM_OK) {
            if (f != stdin)
                fclose(f);
            return fail_msg(o->input, tm_strerror(st));
        }
        size_t cap = 1 << 20;
        char *chunk = tm_malloc(cap);
        st = chunk ? TM_OK : tm_api_errorf(&e, TM_ENOMEM, NULL, -1, "out of memory");
        int first = 1;
        while (st == TM_OK) {
            size_t got = fread(chunk, 1, cap, f);
            if (got == 0) {
                if (ferror(f))
                    st = tm_api_errorf(&e, TM_EIO, o->input, -1, "%s", strerror(errno));
                break;
            }
            size_t skip = first && got >= 3 && !memcmp(chunk, "\xEF\xBB\xBF", 3) ? 3 : 0;
            first = 0;
            st = tm_doc_stream_feed(s, chunk + skip, got - skip, &e);
        }
        if (st == TM_OK)
            st = tm_doc_stream_finish(s, &e);
        tm_free(chunk);
        tm_doc_stream_free(s);
        if (f != stdin)
            fclose(f);
        return st == TM_OK ? 0 : job_error(&e);
    }
    char *bytes;
    size_t len;
    st = read_all(o->input, c->limits.max_total_bytes, &bytes, &len, err);
    if (st != TM_OK)
        return fail_msg(o->input, err);
    st = tm_corpus_parse(c, bytes, len, (enum tm_corpus_format)format, &e);
    tm_free(bytes);
    return st == TM_OK ? 0 : job_error(&e);
}

static int load_spec(const char *cmd, const struct cli_opts *o, struct tm_job_spec *spec)
{
    struct tm_api_error e;
    char err[TM_ERR_SIZE];
    const char *text = o->spec_text ? o->spec_text : "{}";
    char *owned = NULL;
    size_t len = strlen(text);
    if (o->spec_file) {
        tm_status st = read_all(o->spec_file, (size_t)64 << 20, &owned, &len, err);
        if (st != TM_OK)
            return fail_msg(o->spec_file, err);
        text = owned;
    }
    tm_status st = tm_job_spec_parse(spec, text, len, NULL, &e);
    tm_free(owned);
    if (st != TM_OK)
        return job_error(&e);
    if (spec->corpus_id)
        return usage_error(cmd, "%s", "the spec's corpus_id is for topicd serve; give INPUT");
    return 0;
}

/* The documents to vectorize: INPUT, or the spec's inline documents. */
static int get_documents(const char *cmd, const struct cli_opts *o, struct tm_job_spec *spec,
                         struct tm_corpus *corpus, const struct tm_corpus **docs)
{
    if (o->input && spec->has_documents)
        return usage_error(cmd, "%s", "give INPUT or the spec's \"documents\", not both");
    if (!o->input) {
        if (!spec->has_documents)
            return usage_error(cmd, "%s", "no INPUT (use '-' for standard input)");
        *docs = &spec->documents;
        return 0;
    }
    int rc = load_corpus(o, corpus);
    *docs = corpus;
    return rc;
}

static int write_matrix(const char *path, const struct tm_csr *m)
{
    char err[TM_ERR_SIZE];
    FILE *f = fopen(path, "w");
    if (!f)
        return fail_msg(path, strerror(errno));
    tm_status st = tm_mmio_write(f, m, err);
    if (fclose(f) != 0 && st == TM_OK)
        st = tm_errf(err, TM_EIO, "%s", strerror(errno));
    return st == TM_OK ? 0 : fail_msg(path, err);
}

static int print_json(char *json, size_t len)
{
    end_progress();
    size_t put = fwrite(json, 1, len, stdout);
    tm_free(json);
    if (put != len || fflush(stdout) != 0)
        return fail_msg("stdout", strerror(errno));
    return 0;
}

/* The start both commands share: options, the API, threads, progress
 * reporting into prog (progress calls it) and Ctrl-C. Returns as parse_args
 * does: < 0 on a usage error, > 0 when help was printed, 0 to go on. */
static int cli_start(const char *cmd, int argc, char **argv, enum cli_command which,
                     struct cli_opts *o, int *threads, struct tm_progress_bar *prog,
                     struct tm_progress *progress)
{
    int rc = parse_args(cmd, argc, argv, o, which);
    if (rc)
        return rc;
    tm_api_init();
    stop_idle_blas_threads();
    *threads = setup_threads(o->threads);
    int terminal = isatty(STDERR_FILENO);
    tm_progress_bar_init(prog, stderr, tm_progress_style_for(o->quiet, o->progress, terminal),
                         terminal ? tm_progress_bar_columns(STDERR_FILENO) : 80);
    active_bar = prog;
    *progress = (struct tm_progress){report_progress, prog};
    signal(SIGINT, on_sigint);
    return 0;
}

/* docs through the spec's vectorizer on threads threads into v (released by
 * the caller whatever the outcome). Returns an exit status. */
static int vectorize_docs(struct tm_job_spec *spec, const struct tm_corpus *docs, int threads,
                          const struct tm_progress *progress, struct tm_vectorized *v)
{
    char err[TM_ERR_SIZE] = "";
    spec->vectorizer.n_threads = threads;
    tm_status st = tm_vectorize(&spec->vectorizer, docs->docs, docs->n_docs, progress, v, err);
    return st == TM_OK ? 0 : core_error("vectorizer", st, err);
}

int tm_cli_vectorize(int argc, char **argv)
{
    struct cli_opts o;
    struct tm_job_spec spec;
    struct tm_corpus corpus;
    struct tm_vectorized v;
    struct tm_result_timings timings;
    struct tm_api_error e;
    const struct tm_corpus *docs = NULL;
    struct tm_progress_bar prog;
    struct tm_progress progress;
    int threads;
    double t0 = tm_clock_monotonic();
    int rc = cli_start("vectorize", argc, argv, CLI_VECTORIZE, &o, &threads, &prog, &progress);
    if (rc)
        return rc < 0 ? EXIT_USAGE : 0;

    tm_job_spec_init(&spec);
    tm_corpus_init(&corpus, NULL);
    memset(&v, 0, sizeof(v));
    tm_result_timings_init(&timings);
    if ((rc = load_spec("vectorize", &o, &spec)) != 0)
        goto out;
    if ((rc = get_documents("vectorize", &o, &spec, &corpus, &docs)) != 0)
        goto out;
    timings.read = tm_clock_monotonic() - t0;
    if ((rc = vectorize_docs(&spec, docs, threads, &progress, &v)) != 0)
        goto out;
    if (o.mm_out && (rc = write_matrix(o.mm_out, &v.matrix)) != 0)
        goto out;
    timings.total = tm_clock_monotonic() - t0;
    char *json;
    size_t len;
    tm_status st;
    if ((st = tm_result_render_vectorize(&v, o.summary, &timings, &json, &len, &e)) != TM_OK) {
        rc = job_error(&e);
        goto out;
    }
    rc = print_json(json, len);
out:
    tm_vectorized_release(&v);
    tm_corpus_release(&corpus);
    tm_job_spec_release(&spec);
    return rc;
}

/* --vocabulary FILE: one term per line, as many as the matrix has columns. */
static int load_vocabulary(const char *path, int64_t n_cols, struct tm_vocab *vocab)
{
    char err[TM_ERR_SIZE];
    char *bytes;
    size_t len;
    memset(vocab, 0, sizeof(*vocab));
    tm_status st = read_all(path, (size_t)1 << 30, &bytes, &len, err);
    if (st != TM_OK)
        return fail_msg(path, err);
    if (len && bytes[len - 1] == '\n')
        len--;
    int64_t n = len ? 1 : 0;
    for (size_t i = 0; i < len; i++)
        n += bytes[i] == '\n';
    if (n != n_cols) {
        tm_free(bytes);
        snprintf(err, sizeof(err), "%lld terms for a matrix of %lld columns", (long long)n,
                 (long long)n_cols);
        return fail_msg(path, err);
    }
    vocab->offsets = tm_mallocarray((size_t)n + 1, sizeof(int64_t));
    if (!vocab->offsets) {
        tm_free(bytes);
        return fail_msg(path, "out of memory");
    }
    /* The pool is the file itself with the newlines (and any "\r") cut out. */
    int64_t t = 0;
    size_t w = 0, start = 0;
    vocab->offsets[0] = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || bytes[i] == '\n') {
            size_t end = i;
            if (end > start && bytes[end - 1] == '\r')
                end--;
            memmove(bytes + w, bytes + start, end - start);
            w += end - start;
            vocab->offsets[++t] = (int64_t)w;
            start = i + 1;
        }
    }
    vocab->pool = bytes;
    vocab->n_terms = n;
    return 0;
}

/* --matrix-market-in: streamed (tm_mmio_read_file), so the file is never held
 * whole; a regular file's size lets the arrays be allocated once. */
static int load_matrix(const char *path, struct tm_csr *mm)
{
    struct tm_api_error e;
    struct stat sb;
    char buf[512];
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return fail_msg(path, strerror(errno));
    int64_t size = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1;
    tm_status st = tm_mmio_read_file(f, size, 0, mm, &e);
    if (f != stdin)
        fclose(f);
    if (st != TM_OK) {
        end_progress();
        fprintf(stderr, "topicd: %s: %s\n", path, tm_api_error_format(&e, buf, sizeof(buf)));
        return EXIT_JOB;
    }
    return 0;
}

/* model.coherence: the documents' token streams, then the fit's topics
 * scored against them. Returns an exit status. */
static int score_coherence(const struct tm_job_spec *spec, const struct tm_corpus *docs,
                           const struct tm_vectorized *v, int threads,
                           struct tm_coherence_corpus *cc, struct tm_fit_result *r)
{
    char err[TM_ERR_SIZE] = "";
    struct tm_vectorizer_params vp = spec->vectorizer;
    vp.n_threads = threads;
    double t0 = tm_clock_monotonic();
    tm_status st = TM_OK;
    if (!cc) /* a sweep made it before the fits */
        st = tm_coherence_corpus_new(&vp, docs->docs, docs->n_docs, &v->vocab, &cc, err);
    if (st == TM_OK)
        st = tm_coherence_score_result(cc, spec->model.coherence, threads, r, err);
    tm_coherence_corpus_free(cc);
    if (st != TM_OK)
        return core_error("model.coherence", st, err);
    r->seconds_coherence = tm_clock_monotonic() - t0; /* the tokens' pass included */
    return 0;
}

/* --csv-dir: document-topics.csv reads the fit's weights (column-major, m
 * x k) a page at a time, as the server reads the store's, with the
 * documents' ids (m entries, or NULL: every document by its index). */
struct csv_weights {
    const struct tm_dense_owned *w;
    char *const *ids;
};

/* api/exports.h's tm_export_page_fn over struct csv_weights. */
static tm_status csv_page(void *ctx, int64_t offset, int64_t limit, double **w, char ***ids,
                          int64_t *n, int64_t *k, int64_t *total, char *err)
{
    const struct csv_weights *c = ctx;
    int64_t m = c->w->rows;
    *k = c->w->cols;
    *total = m;
    *n = offset < m ? (m - offset < limit ? m - offset : limit) : 0;
    *ids = NULL;
    if (!(*w = tm_mallocarray((size_t)(*n ? *n * *k : 1), sizeof(double))))
        return tm_errf(err, TM_ENOMEM, "document topics");
    for (int64_t i = 0; i < *n; i++)
        for (int64_t t = 0; t < *k; t++)
            (*w)[i * *k + t] = c->w->data[offset + i + t * m];
    if (!c->ids || !*n)
        return TM_OK;
    int ok = (*ids = tm_calloc((size_t)*n, sizeof(char *))) != NULL;
    for (int64_t i = 0; ok && i < *n; i++) {
        const char *id = c->ids[offset + i];
        ok = !id || ((*ids)[i] = tm_strndup(id, strlen(id))) != NULL;
    }
    if (ok)
        return TM_OK;
    for (int64_t i = 0; *ids && i < *n; i++)
        tm_free((*ids)[i]);
    tm_free(*ids);
    tm_free(*w);
    *ids = NULL;
    *w = NULL;
    return tm_errf(err, TM_ENOMEM, "document ids");
}

/* Writes DIR/name: text (len bytes), or what dt streams when text is NULL.
 * Through DIR/name.tmp, renamed once complete, so that a write that fails
 * never leaves a file that looks whole. */
static int write_csv_file(const char *dir, const char *name, const char *text, size_t len,
                          struct tm_export_dt *dt)
{
    char path[4096], tmp[4100], err[TM_ERR_SIZE] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return fail_msg(tmp, strerror(errno));
    tm_status st = TM_OK;
    if (text && fwrite(text, 1, len, f) != len)
        st = tm_errf(err, TM_EIO, "%s", strerror(errno));
    char buf[1 << 16];
    for (size_t got = 1; !text && !st && got;)
        if (!(st = tm_export_dt_read(dt, buf, sizeof(buf), &got, err)) &&
            fwrite(buf, 1, got, f) != got)
            st = tm_errf(err, TM_EIO, "%s", strerror(errno));
    if (fclose(f) != 0 && !st)
        st = tm_errf(err, TM_EIO, "%s", strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = tm_errf(err, TM_EIO, "%s", strerror(errno));
    if (st) {
        unlink(tmp);
        return fail_msg(path, err);
    }
    return 0;
}

/* --csv-dir DIR: topic-terms.csv from the result's JSON (len bytes) and
 * document-topics.csv from the fit's weights, with docs' ids (docs NULL
 * for a matrix given without documents). */
static int write_csv_dir(const char *dir, const char *json, size_t len,
                         const struct tm_fit_result *r, const struct tm_corpus *docs)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return fail_msg(dir, strerror(errno));
    char *csv = NULL;
    size_t csv_len = 0;
    struct tm_api_error e;
    if (tm_export_topic_terms(json, len, &csv, &csv_len, &e))
        return job_error(&e);
    int rc = write_csv_file(dir, "topic-terms.csv", csv, csv_len, NULL);
    tm_free(csv);
    if (rc)
        return rc;
    int has_ids = docs && docs->ids && docs->n_docs == r->document_topics.rows;
    struct csv_weights c = {&r->document_topics, has_ids ? docs->ids : NULL};
    struct tm_export_dt *dt = NULL;
    char err[TM_ERR_SIZE] = "";
    tm_status st = tm_export_dt_new(&dt, csv_page, &c, 1024, err);
    if (st)
        return fail_msg("document-topics.csv", err);
    rc = write_csv_file(dir, "document-topics.csv", NULL, 0, dt);
    tm_export_dt_free(dt);
    return rc;
}

/* --save-model: the model file (api/model_file.h) the server keeps for a
 * job, written to path; its size goes into the result. */
static int save_model(const char *path, const struct tm_fit_result *r,
                      const struct tm_vectorized *v, const struct tm_job_spec *spec,
                      struct tm_result_timings *timings)
{
    struct tm_model_file_parts parts = {.fit = r,
                                        .v = v,
                                        .spec = spec,
                                        .term_frequency = v->term_frequency,
                                        .doc_lengths = v->doc_lengths,
                                        .components_float32 = 1};
    unsigned char *bytes = NULL;
    size_t len = 0;
    char err[TM_ERR_SIZE] = "";
    tm_status st = tm_model_file_write(&parts, &bytes, &len, err);
    if (st)
        return core_error("--save-model", st, err);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(bytes, 1, len, f) == len;
    if (f && fclose(f))
        ok = 0;
    tm_free(bytes);
    if (!ok)
        return fail_msg(path, strerror(errno));
    timings->model_bytes = (int64_t)len;
    return 0;
}

int tm_cli_fit(int argc, char **argv)
{
    struct cli_opts o;
    struct tm_job_spec spec;
    struct tm_corpus corpus;
    struct tm_vectorized v;
    struct tm_fit_result r;
    struct tm_result_timings timings;
    struct tm_api_error e;
    struct tm_csr mm;
    const struct tm_corpus *docs = NULL;
    const struct tm_csr *X;
    struct tm_coherence_corpus *cc = NULL; /* a sweep's model.coherence token streams */
    char err[TM_ERR_SIZE];
    struct tm_progress_bar prog;
    struct tm_progress progress;
    int threads;
    double t0 = tm_clock_monotonic();
    int rc = cli_start("fit", argc, argv, CLI_FIT, &o, &threads, &prog, &progress);
    if (rc)
        return rc < 0 ? EXIT_USAGE : 0;

    tm_job_spec_init(&spec);
    tm_corpus_init(&corpus, NULL);
    memset(&v, 0, sizeof(v));
    memset(&r, 0, sizeof(r));
    memset(&mm, 0, sizeof(mm));
    tm_result_timings_init(&timings);
    tm_status st;
    if ((rc = load_spec("fit", &o, &spec)) != 0)
        goto out;
    if (!spec.has_model) {
        rc = usage_error("fit", "%s",
                         "the spec has no \"model\" (e.g. --spec '{\"model\":{\"method\":"
                         "\"nmf\",\"n_topics\":10}}'); topicd vectorize needs none");
        goto out;
    }
    if (o.mm_in && spec.model.coherence) {
        rc = fail_msg("model.coherence",
                      "needs the documents' texts, which a --matrix-market-in input lacks");
        goto out;
    }
    if (o.mm_in) {
        if ((rc = load_matrix(o.mm_in, &mm)) != 0)
            goto out;
        if (o.vocab_file && (rc = load_vocabulary(o.vocab_file, mm.n_cols, &v.vocab)) != 0)
            goto out;
        X = &mm;
        timings.read = tm_clock_monotonic() - t0;
    } else {
        if ((rc = get_documents("fit", &o, &spec, &corpus, &docs)) != 0)
            goto out;
        timings.read = tm_clock_monotonic() - t0;
        if ((rc = vectorize_docs(&spec, docs, threads, &progress, &v)) != 0)
            goto out;
        X = &v.matrix;
    }
    if (o.mm_out && (rc = write_matrix(o.mm_out, X)) != 0)
        goto out;
    spec.model.n_threads = threads;
    setup_blas_threads(spec.model.method, threads);
    err[0] = '\0';
    const struct tm_backend_ops *backend;
    const char *what;
    st = fit_backend(X, &spec.model, &backend, &what, err);
    /* A sweep scores each k's topics: the token streams come first. */
    if (st == TM_OK && spec.n_sweep && spec.model.coherence) {
        struct tm_vectorizer_params vp = spec.vectorizer;
        vp.n_threads = threads;
        if ((st = tm_coherence_corpus_new(&vp, docs->docs, docs->n_docs, &v.vocab, &cc, err))) {
            rc = core_error("model.coherence", st, err);
            goto out;
        }
    }
    if (st == TM_OK && spec.n_sweep) {
        struct tm_sweep_params sw = {spec.sweep_topics,    spec.n_sweep, spec.sweep_warm_start, cc,
                                     spec.model.coherence, threads};
        st = tm_sweep_fit(backend, NULL, X, &spec.model, &sw, &progress, &r, err);
    } else if (st == TM_OK) {
        st = tm_fit(backend, NULL, X, &spec.model, &progress, &r, err);
    }
    tm_csr_release(&mm); /* the result is rendered from r alone */
    if (st != TM_OK) {
        rc = core_error(what, st, err);
        goto out;
    }
    if (spec.model.coherence) {
        rc = score_coherence(&spec, docs, &v, threads, cc, &r);
        cc = NULL; /* score_coherence freed it */
        if (rc != 0)
            goto out;
    }
    if (o.save_model && (rc = save_model(o.save_model, &r, &v, &spec, &timings)) != 0)
        goto out;
    timings.total = tm_clock_monotonic() - t0;
    char *json;
    size_t len;
    if ((st = tm_result_render_fit(&r, &v, &spec, &timings, &json, &len, &e)) != TM_OK) {
        rc = job_error(&e);
        goto out;
    }
    if (o.csv_dir && (rc = write_csv_dir(o.csv_dir, json, len, &r, o.mm_in ? NULL : docs)) != 0) {
        tm_free(json);
        goto out;
    }
    rc = print_json(json, len);
out:
    tm_coherence_corpus_free(cc);
    tm_fit_result_release(&r);
    if (o.mm_in) {
        /* v holds only the --vocabulary terms, allocated here. */
        tm_free(v.vocab.pool);
        tm_free(v.vocab.offsets);
    } else {
        tm_vectorized_release(&v);
    }
    tm_csr_release(&mm);
    tm_corpus_release(&corpus);
    tm_job_spec_release(&spec);
    return rc;
}

int tm_cli_transform(int argc, char **argv)
{
    struct cli_opts o;
    struct tm_corpus corpus;
    struct tm_model_file model;
    struct tm_transform_result r;
    struct tm_progress_bar prog;
    struct tm_progress progress;
    char err[TM_ERR_SIZE] = "";
    int threads;
    int rc = cli_start("transform", argc, argv, CLI_TRANSFORM, &o, &threads, &prog, &progress);
    if (rc)
        return rc < 0 ? EXIT_USAGE : 0;

    tm_corpus_init(&corpus, NULL);
    memset(&r, 0, sizeof(r));
    tm_status st = tm_model_file_load(o.model_file, &model, err);
    if (st != TM_OK) {
        rc = fail_msg("model", err); /* err names the path */
        goto out;
    }
    if ((rc = load_corpus(&o, &corpus)) != 0)
        goto out;
    const struct tm_backend_ops *backend = NULL;
    if (model.params.device == TM_DEVICE_GPU && model.params.method != TM_METHOD_FULL_SVD &&
        !(backend = tm_gpu_load(NULL))) {
        rc = fail_msg("device", "the model asks for a GPU and this build has no GPU backend");
        goto out;
    }
    setup_blas_threads(TM_METHOD_NMF, threads);
    st = tm_apply_run(&model, corpus.docs, corpus.n_docs, backend, NULL, threads, &progress, &r,
                      err);
    if (st != TM_OK) {
        rc = core_error("transform", st, err);
        goto out;
    }
    char *json;
    size_t len;
    if ((st = tm_apply_render(&r, (const char *const *)corpus.ids, &json, &len)) != TM_OK) {
        rc = fail_msg("transform", tm_strerror(st));
        goto out;
    }
    rc = print_json(json, len);
out:
    tm_transform_result_release(&r);
    tm_model_file_release(&model);
    tm_corpus_release(&corpus);
    return rc;
}

static const char store_help[] =
    "usage: topicd store copy --from DIR [--to URL]\n"
    "\n"
    "Copies the SQLite store in the data directory DIR (corpora with their\n"
    "documents, jobs with their specs, states, results, document topics and\n"
    "idempotency keys, each with its tenant, and the API keys' hashes; ids,\n"
    "order and times kept) into the PostgreSQL store URL\n"
    "names (postgresql://... or a libpq conninfo; default: $TOPICD_STORE).\n"
    "Running jobs are copied as queued. DIR must not be in use: stop its server\n"
    "first. The target must be empty, or hold what an earlier copy of DIR put\n"
    "there: each corpus and each batch of jobs is one transaction, and records\n"
    "already copied are skipped, so an interrupted copy is finished by running\n"
    "it again. The password goes where `topicd serve --help` says, never in --to.\n"
    "\n"
    "options:\n"
    "  --from DIR   the data directory of the SQLite store (serve's --data-dir)\n"
    "  --to URL     the PostgreSQL store (serve's --store)\n"
    "  --help       this help\n"
    "\n"
    "Exit status: 0 copied, 1 the copy failed (nothing half-written stays), 2\n"
    "usage error.\n";

int tm_cli_store(int argc, char **argv)
{
    const char *from = NULL, *to = NULL;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(store_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "copy"))
        return usage_error("store", "unknown command '%s'", argv[1]);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(store_help, stdout);
            return 0;
        }
        const char **dst = !strcmp(a, "--from") ? &from : !strcmp(a, "--to") ? &to : NULL;
        if (!dst)
            return usage_error("store", "unknown option '%s'", a);
        if (i + 1 >= argc)
            return usage_error("store", "option '%s' needs a value", a);
        *dst = argv[++i];
    }
    if (!from)
        return usage_error("store", "%s", "--from DIR is required");
    char err[TM_ERR_SIZE] = "";
    int has_password = 0;
    enum tm_store_driver driver;
    if (to) {
        if (tm_store_parse(to, NULL, &driver, &has_password, NULL, err))
            return usage_error("store", "%s", err);
        if (has_password)
            return usage_error("store", "%s",
                               "--to: the URL holds a password, which the command line shows to"
                               " every user (ps): put it in a file named by"
                               " TOPICD_STORE_PASSWORD_FILE, or in PGPASSWORD or PGPASSFILE");
    } else {
        to = getenv("TOPICD_STORE");
    }
    if (!to || !*to)
        return usage_error("store", "%s", "--to URL (or TOPICD_STORE) is required");
    if (tm_store_parse(to, NULL, &driver, NULL, NULL, err))
        return usage_error("store", "%s", err);
    if (driver != TM_STORE_PG)
        return usage_error("store", "%s", "--to must name a PostgreSQL store");
    char target[TM_STORE_TARGET_SIZE];
    tm_store_parse(to, NULL, &driver, NULL, target, err);
    struct tm_store_copy_stats cs;
    tm_status st = tm_store_copy(from, to, &cs, err);
    if (st) {
        fprintf(stderr, "topicd store copy: %s\n", err);
        if (st == TM_EBUSY && strstr(err, "data dir"))
            fprintf(stderr, "Stop the server on %s first: a copy needs the store to itself.\n",
                    from);
        return EXIT_JOB;
    }
    printf("copied %s -> %s: %lld corpora (%lld documents), %lld jobs (%lld running jobs"
           " queued again), %lld API keys; already there: %lld corpora, %lld jobs, %lld keys\n",
           from, target, (long long)cs.corpora, (long long)cs.documents, (long long)cs.jobs,
           (long long)cs.requeued, (long long)cs.keys, (long long)cs.corpora_present,
           (long long)cs.jobs_present, (long long)cs.keys_present);
    return 0;
}

static const char keys_help[] =
    "usage: topicd keys create --tenant NAME [--admin] [STORE]\n"
    "       topicd keys list [STORE]\n"
    "       topicd keys revoke ID [STORE]\n"
    "\n"
    "API keys for `topicd serve` (clients send Authorization: Bearer KEY).\n"
    "create prints a new key once, on standard output: the store keeps only its\n"
    "SHA-256, so a lost key cannot be shown again (revoke it, create another).\n"
    "A key belongs to a tenant: the corpora and jobs it makes are the tenant's,\n"
    "and other tenants' keys cannot see them; an --admin key sees every tenant's.\n"
    "list shows id, tenant, admin, created, last used and revoked, never keys.\n"
    "revoke ID stops the key: every server on the store refuses it within a few\n"
    "seconds (their caches). Once the store holds a key that is not revoked,\n"
    "`topicd serve` requires keys (see its --auth).\n"
    "\n"
    "STORE, as serve takes it:\n"
    "  --data-dir DIR  the SQLite store (default $TOPICD_DATA_DIR, else ./data); a\n"
    "                  SQLite store has one process: stop its server first\n"
    "  --store URL     the PostgreSQL store (default $TOPICD_STORE); the password\n"
    "                  goes where `topicd serve --help` says, never in the URL\n"
    "\n"
    "Exit status: 0 done, 1 the store failed or ID is unknown, 2 usage error.\n";

/* t as UTC ISO 8601 ("-" for never), padded to width. */
static void print_time(double t, int width)
{
    if (t <= 0) {
        printf("%-*s", width, "-");
        return;
    }
    time_t s = (time_t)t;
    struct tm tm;
    char buf[32];
    gmtime_r(&s, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-*s", width, buf);
}

static int keys_list(struct tm_store *st, char *err)
{
    enum { MAX = 4096 };
    struct tm_key_record *k = tm_calloc(MAX, sizeof(*k));
    int n = 0;
    if (!k || st->m->key_list(st->ctx, k, MAX, &n, err)) {
        fprintf(stderr, "topicd keys list: %s\n", k ? err : "out of memory");
        tm_free(k);
        return EXIT_JOB;
    }
    printf("%-14s %-24s %-5s %-21s %-21s %s\n", "ID", "TENANT", "ADMIN", "CREATED", "LAST USED",
           "REVOKED");
    for (int i = 0; i < n; i++) {
        printf("%-14s %-24s %-5s ", k[i].id, k[i].tenant, k[i].admin ? "yes" : "no");
        print_time(k[i].created_at, 21);
        putchar(' ');
        print_time(k[i].last_used_at, 21);
        putchar(' ');
        print_time(k[i].revoked_at, 0);
        putchar('\n');
    }
    tm_free(k);
    return 0;
}

int tm_cli_keys(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(keys_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *cmd = argv[1], *tenant = NULL, *id = NULL;
    const char *data_dir = getenv("TOPICD_DATA_DIR"), *store = getenv("TOPICD_STORE");
    int admin = 0, store_flag = 0;
    if (strcmp(cmd, "create") && strcmp(cmd, "list") && strcmp(cmd, "revoke"))
        return usage_error("keys", "unknown command '%s'", cmd);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(keys_help, stdout);
            return 0;
        }
        if (!strcmp(a, "--admin") && !strcmp(cmd, "create")) {
            admin = 1;
            continue;
        }
        if (a[0] != '-' && !strcmp(cmd, "revoke") && !id) {
            id = a;
            continue;
        }
        const char **dst = !strcmp(a, "--data-dir")                           ? &data_dir
                           : !strcmp(a, "--store")                            ? &store
                           : !strcmp(a, "--tenant") && !strcmp(cmd, "create") ? &tenant
                                                                              : NULL;
        if (!dst)
            return usage_error("keys", "unknown option '%s'", a);
        if (i + 1 >= argc)
            return usage_error("keys", "option '%s' needs a value", a);
        store_flag |= dst == &store;
        *dst = argv[++i];
    }
    if (!strcmp(cmd, "create") && !tenant)
        return usage_error("keys", "%s", "create needs --tenant NAME");
    if (tenant && !tm_tenant_valid(tenant))
        return usage_error("keys", "--tenant: '%s' is not 1 to 63 of [A-Za-z0-9_.-]", tenant);
    if (!strcmp(cmd, "revoke") && !id)
        return usage_error("keys", "%s", "revoke needs the key's ID (topicd keys list)");
    if (!data_dir || !*data_dir)
        data_dir = "./data";
    char err[TM_ERR_SIZE] = "";
    enum tm_store_driver driver;
    int has_password = 0;
    if (tm_store_parse(store, data_dir, &driver, &has_password, NULL, err))
        return usage_error("keys", "%s", err);
    if (store_flag && has_password)
        return usage_error("keys", "%s",
                           "--store: the URL holds a password, which the command line shows to"
                           " every user (ps): put it in a file named by"
                           " TOPICD_STORE_PASSWORD_FILE, or in PGPASSWORD or PGPASSFILE");
    struct tm_store st;
    if (tm_store_open(&st, store, data_dir, err)) {
        fprintf(stderr, "topicd keys: %s\n", err);
        if (driver == TM_STORE_SQLITE && strstr(err, "data dir"))
            fprintf(stderr, "A SQLite store has one process: stop the server on %s first.\n",
                    data_dir);
        return EXIT_JOB;
    }
    int rc = 0;
    if (!strcmp(cmd, "list")) {
        rc = keys_list(&st, err);
    } else if (!strcmp(cmd, "revoke")) {
        if (st.m->key_revoke(st.ctx, id, tm_clock_unix(), err)) {
            fprintf(stderr, "topicd keys revoke: %s\n", err);
            rc = EXIT_JOB;
        } else {
            printf("revoked %s\n", id);
        }
    } else {
        char key[TM_KEY_SIZE];
        struct tm_key_record rec;
        tm_status s = tm_key_generate(tenant, admin, tm_clock_unix(), key, &rec, err);
        if (!s)
            s = st.m->key_create(st.ctx, &rec, err);
        if (s) {
            fprintf(stderr, "topicd keys create: %s\n", err);
            rc = EXIT_JOB;
        } else {
            /* The key on stdout alone, so that scripts can capture it; the
             * rest on stderr. */
            printf("%s\n", key);
            fprintf(stderr,
                    "created key %s for tenant %s%s: it is shown this once; keep it secret\n",
                    rec.id, rec.tenant, rec.admin ? " (admin)" : "");
        }
        memset(key, 0, sizeof(key));
    }
    tm_store_close(&st);
    return rc;
}
