/*
 * bench_upload.c - `make bench-upload`: corpus uploads on a real
 * `topicd serve`. A JSON Lines body and a JSON array body of about --mb MB
 * (the documents of --corpus, a JSON Lines file, repeated) are POSTed to
 * /v1/corpora, each to a fresh server with a fresh data directory; for each
 * upload it prints the seconds from the first byte sent to the response,
 * MB/s (10^6 bytes), and the server's peak resident memory (VmHWM of
 * /proc/PID/status, read before it exits).
 *
 * Several --topicd binaries are run in turns (A B A B ...), --runs rounds,
 * so that an old and a new binary meet the same machine load; the medians
 * close the output. Each binary runs on the SQLite store in its data
 * directory and, for each --store URL (a PostgreSQL store, passed as
 * TOPICD_STORE), on that store too, in the same turns; a corpus uploaded
 * to a --store is deleted again before the server stops, so that every
 * run starts from the same store.
 *
 * usage: bench_upload --topicd PATH [--topicd PATH ...] [--runs N] [--mb M]
 *                     [--corpus FILE.jsonl] [--dir DIR] [--store URL ...]
 * The bodies are written once to DIR (default /tmp) as
 * topicd-upload-<M>mb.jsonl and .json, and reused while their size fits.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_BINS 4
#define MAX_STORES 3
#define MAX_RUNS 32

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Writes path from the corpus's lines repeated until it holds mb * 10^6
 * bytes or more: one document per line, or one JSON array of them. */
static void make_body(const char *corpus, const char *path, long mb, int array)
{
    struct stat sb;
    long long want = (long long)mb * 1000000;
    if (!stat(path, &sb) && sb.st_size >= want && sb.st_size < want + (4 << 20))
        return;
    FILE *in = fopen(corpus, "rb");
    if (!in)
        die(corpus);
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *out = fopen(tmp, "wb");
    if (!out)
        die(tmp);
    long long written = 0;
    size_t cap = 0;
    char *line = NULL;
    ssize_t n;
    if (array)
        written += fprintf(out, "[\n");
    while (written < want) {
        rewind(in);
        while (written < want && (n = getline(&line, &cap, in)) > 0) {
            if (line[n - 1] == '\n')
                n--;
            if (!n)
                continue;
            if (array && written > 2)
                written += fprintf(out, ",\n");
            written += (long long)fwrite(line, 1, (size_t)n, out);
            if (!array)
                written += fprintf(out, "\n");
        }
    }
    if (array)
        fprintf(out, "\n]\n");
    free(line);
    fclose(in);
    if (fclose(out) || rename(tmp, path))
        die(path);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &al))
        die("bind");
    close(fd);
    return ntohs(a.sin_port);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        close(fd);
        return -1;
    }
    return fd;
}

/* VmHWM of pid in kB, or -1. */
static long peak_rss_kb(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(buf, sizeof(buf), f))
        if (!strncmp(buf, "VmHWM:", 6))
            kb = atol(buf + 6);
    fclose(f);
    return kb;
}

struct result {
    double seconds, mb_s;
    long rss_kb;
};

/* DELETE /v1/corpora/{the id in resp} on port; the status, 0 on failure. */
static int delete_corpus(int port, const char *resp)
{
    const char *p = strstr(resp, "\"id\":\"");
    if (!p)
        return 0;
    p += 6;
    int fd = dial(port);
    if (fd < 0)
        return 0;
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "DELETE /v1/corpora/%.*s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n\r\n",
                     (int)strcspn(p, "\""), p);
    char buf[512] = "";
    ssize_t got = 0;
    if (write(fd, req, (size_t)n) == n)
        got = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    return got > 12 ? atoi(buf + 9) : 0;
}

/* One upload of the file at path to a fresh server (on store, when not
 * NULL); 0 on a 201. */
static int run_one(const char *topicd, const char *store, const char *path, const char *ctype,
                   struct result *r)
{
    char dir[] = "/tmp/topicd-bench-upload-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    int port = free_port();
    char pbuf[16], logpath[128];
    snprintf(pbuf, sizeof(pbuf), "%d", port);
    snprintf(logpath, sizeof(logpath), "%s/server.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        if (store)
            setenv("TOPICD_STORE", store, 1);
        execl(topicd, topicd, "serve", "--port", pbuf, "--data-dir", dir, "--workers", "1",
              "--log-level", "warn", "--shutdown-grace", "0", (char *)NULL);
        _exit(127);
    }
    int fd = -1;
    for (int tries = 0; tries < 500 && fd < 0; tries++) {
        usleep(10000);
        fd = dial(port);
    }
    if (fd < 0) {
        fprintf(stderr, "bench_upload: the server did not start (see %s)\n", logpath);
        kill(pid, SIGKILL);
        return -1;
    }
    int in = open(path, O_RDONLY);
    struct stat sb;
    if (in < 0 || fstat(in, &sb))
        die(path);
    size_t len = (size_t)sb.st_size;
    const char *body = mmap(NULL, len, PROT_READ, MAP_PRIVATE, in, 0);
    if (body == MAP_FAILED)
        die("mmap");
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "POST /v1/corpora HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                      ctype, len);
    double t0 = now();
    if (write(fd, head, (size_t)hl) != hl)
        die("write");
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, body + off, len - off < (1 << 20) ? len - off : 1 << 20);
        if (w <= 0)
            break; /* the server answered early (an error): read it */
        off += (size_t)w;
    }
    char resp[4096];
    size_t rl = 0;
    ssize_t got;
    while (rl < sizeof(resp) - 1 && (got = read(fd, resp + rl, sizeof(resp) - 1 - rl)) > 0)
        rl += (size_t)got;
    resp[rl] = '\0';
    r->seconds = now() - t0;
    r->mb_s = (double)len / 1e6 / r->seconds;
    r->rss_kb = peak_rss_kb(pid);
    close(fd);
    munmap((void *)body, len);
    close(in);
    int status = rl > 12 ? atoi(resp + 9) : 0;
    if (store && status == 201 && delete_corpus(port, resp) != 204)
        fprintf(stderr, "bench_upload: could not delete the corpus from %s\n", store);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    if (status != 201) {
        const char *b = strstr(resp, "\r\n\r\n");
        fprintf(stderr, "bench_upload: %s answered %d %s\n", topicd, status, b ? b + 4 : "");
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd))
        return -1;
    return status == 201 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    const char *bins[MAX_BINS], *stores[MAX_STORES + 1] = {NULL};
    int nbins = 0, nstores = 1, runs = 3;
    long mb = 200;
    const char *corpus = "../shared/corpora/20news/train.jsonl", *dir = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--topicd") && nbins < MAX_BINS)
            bins[nbins++] = argv[i + 1];
        else if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mb"))
            mb = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--corpus"))
            corpus = argv[i + 1];
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--store") && nstores <= MAX_STORES)
            stores[nstores++] = argv[i + 1];
    }
    if (!nbins || runs < 1 || runs > MAX_RUNS || mb < 1) {
        fprintf(stderr, "usage: bench_upload --topicd PATH [--topicd PATH ...] [--runs N] "
                        "[--mb M] [--corpus FILE.jsonl] [--dir DIR] [--store URL ...]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    static const struct {
        const char *ext, *ctype, *name;
        int array;
    } formats[] = {
        {"jsonl", "application/x-ndjson", "JSON Lines", 0},
        {"json", "application/json", "JSON array", 1},
    };
    char paths[2][512];
    for (int f = 0; f < 2; f++) {
        snprintf(paths[f], sizeof(paths[f]), "%s/topicd-upload-%ldmb.%s", dir, mb, formats[f].ext);
        make_body(corpus, paths[f], mb, formats[f].array);
    }
    static struct result res[MAX_BINS][MAX_STORES + 1][2][MAX_RUNS];
    printf("%-40s %-10s %-10s %5s %8s %8s %12s\n", "binary", "store", "body", "run", "seconds",
           "MB/s", "peak RSS MB");
    for (int run = 0; run < runs; run++) {
        for (int b = 0; b < nbins; b++) {
            for (int s = 0; s < nstores; s++) {
                for (int f = 0; f < 2; f++) {
                    struct result *r = &res[b][s][f][run];
                    if (run_one(bins[b], stores[s], paths[f], formats[f].ctype, r))
                        return 1;
                    printf("%-40s %-10s %-10s %5d %8.2f %8.1f %12.1f\n", bins[b],
                           s ? "postgresql" : "sqlite", formats[f].name, run + 1, r->seconds,
                           r->mb_s, r->rss_kb / 1024.0);
                    fflush(stdout);
                }
            }
        }
    }
    printf("\nmedians of %d runs\n", runs);
    for (int b = 0; b < nbins; b++) {
        for (int s = 0; s < nstores; s++) {
            for (int f = 0; f < 2; f++) {
                double mbs[MAX_RUNS], rss[MAX_RUNS];
                for (int run = 0; run < runs; run++) {
                    mbs[run] = res[b][s][f][run].mb_s;
                    rss[run] = res[b][s][f][run].rss_kb / 1024.0;
                }
                printf("%-40s %-10s %-10s %8.1f MB/s %8.1f MB peak RSS\n", bins[b],
                       s ? "postgresql" : "sqlite", formats[f].name, median(mbs, runs),
                       median(rss, runs));
            }
        }
    }
    return 0;
}
