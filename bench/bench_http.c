/*
 * bench_http.c - `make bench-http`: load on a real `topicd serve`.
 *
 *   1. status polls: C keep-alive connections GET /v1/jobs/{id} in a closed
 *      loop for D seconds while a fit runs on a worker (an NMF with tol 0
 *      that only stops when cancelled); polls/s and latency percentiles.
 *   2. jobs per minute: J small jobs (inline 200-document corpora, NMF k=5)
 *      submitted at once, timed from the first submission to the last
 *      success.
 * The client is one epoll thread speaking HTTP/1.1 on raw sockets, so the
 * load generator costs as little CPU as possible on a small machine.
 *
 * usage: bench_http --topicd PATH [--connections C] [--seconds D] [--jobs J]
 *                   [--workers W] [--http-threads H] [--log-level L]
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int port;

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Length of a complete response in buf (headers + Content-Length), or 0. */
static size_t complete(const char *buf, size_t len, int *status)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - buf) + 4;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    if (len < head + body)
        return 0;
    *status = atoi(buf + 9);
    return head + body;
}

/* One blocking request on a new connection; the body (malloc'd) or NULL. */
static char *request(const char *method, const char *path, const char *ctype, const char *body,
                     size_t blen, int *status)
{
    int fd = dial();
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                     method, path, ctype ? ctype : "application/json", blen);
    if (write(fd, head, (size_t)n) != n || (blen && write(fd, body, blen) != (ssize_t)blen)) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf && len + 1 >= cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown)
                free(buf);
            buf = grown;
        }
        if (!buf) {
            close(fd);
            return NULL;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = 0;
    *status = len > 12 ? atoi(buf + 9) : 0;
    char *b = strstr(buf, "\r\n\r\n");
    char *out = strdup(b ? b + 4 : "");
    free(buf);
    return out;
}

static void json_field(const char *json, const char *key, char *out, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = json ? strstr(json, pat) : NULL;
    out[0] = 0;
    if (!p)
        return;
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct conn {
    int fd;
    char buf[8192];
    size_t len;
    double sent;
};

/* CPU seconds of the server's worker threads (named "tm-worker", as are the
 * threads a job starts), i.e. the fit: the report shows how much it ran. */
static pid_t server_pid;
static double worker_cpu(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)server_pid);
    DIR *d = opendir(path);
    double total = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sp[512], line[1024];
        snprintf(sp, sizeof(sp), "%s/%s/stat", path, e->d_name);
        FILE *f = fopen(sp, "r");
        if (!f)
            continue;
        size_t n = fread(line, 1, sizeof(line) - 1, f);
        fclose(f);
        line[n] = 0;
        char *p = strrchr(line, ')');
        if (!p || !strstr(line, "(tm-worker)"))
            continue;
        /* Fields after the command: state(3) ... utime(14) stime(15). */
        unsigned long long ut = 0, st = 0;
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            total += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    if (d)
        closedir(d);
    return total;
}

static void poll_phase(const char *job_id, int nconn, double seconds)
{
    double cpu0 = worker_cpu();
    char req[256];
    int rl =
        snprintf(req, sizeof(req), "GET /v1/jobs/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", job_id);
    int ep = epoll_create1(0);
    struct conn *c = calloc((size_t)nconn, sizeof(*c));
    size_t cap = 1 << 22, n = 0;
    double *lat = malloc(cap * sizeof(double));
    long errors = 0;
    for (int i = 0; i < nconn; i++) {
        c[i].fd = dial();
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
        c[i].sent = now();
        if (write(c[i].fd, req, (size_t)rl) != rl)
            errors++;
    }
    double t0 = now(), end = t0 + seconds;
    struct epoll_event evs[256];
    while (now() < end) {
        int k = epoll_wait(ep, evs, 256, 100);
        for (int e = 0; e < k; e++) {
            struct conn *x = evs[e].data.ptr;
            ssize_t r = read(x->fd, x->buf + x->len, sizeof(x->buf) - x->len - 1);
            if (r <= 0) {
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
                close(x->fd);
                x->fd = dial();
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = x};
                epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &ev);
                x->len = 0;
            } else {
                x->len += (size_t)r;
                x->buf[x->len] = 0;
                int status;
                size_t used = complete(x->buf, x->len, &status);
                if (!used)
                    continue;
                double t = now();
                if (status != 200) {
                    if (!errors)
                        fprintf(stderr, "first error: %.200s\n", x->buf);
                    errors++;
                }
                if (n < cap)
                    lat[n++] = t - x->sent;
                memmove(x->buf, x->buf + used, x->len - used);
                x->len -= used;
            }
            x->sent = now();
            if (write(x->fd, req, (size_t)rl) != rl)
                errors++;
        }
    }
    double elapsed = now() - t0;
    double fit_cpu = worker_cpu() - cpu0;
    qsort(lat, n, sizeof(double), cmp_double);
    printf("status polls while a fit runs: %d connections, %.1f s\n", nconn, elapsed);
    printf("  polls/s %.0f   p50 %.3f ms   p99 %.3f ms   p99.9 %.3f ms   max %.3f ms   errors "
           "%ld\n",
           (double)n / elapsed, n ? lat[n / 2] * 1e3 : 0, n ? lat[(size_t)(n * 0.99)] * 1e3 : 0,
           n ? lat[(size_t)(n * 0.999)] * 1e3 : 0, n ? lat[n - 1] * 1e3 : 0, errors);
    printf("  the fit (worker threads) meanwhile used %.2f CPU-seconds = %.0f%% of a core\n",
           fit_cpu, 100 * fit_cpu / elapsed);
    for (int i = 0; i < nconn; i++)
        close(c[i].fd);
    close(ep);
    free(c);
    free(lat);
}

/* Synthetic documents: four topics of eight words, some noise. */
static char *docs_json(int n, int words, unsigned seed)
{
    static const char *const topics[4][8] = {
        {"cat", "dog", "pet", "fur", "paw", "tail", "vet", "leash"},
        {"stock", "bond", "market", "yield", "trader", "equity", "fund", "price"},
        {"planet", "orbit", "rocket", "nasa", "moon", "launch", "star", "comet"},
        {"pixel", "render", "shader", "image", "color", "vertex", "texture", "mesh"}};
    size_t cap = (size_t)n * ((size_t)words * 8 + 8) + 64, off = 0;
    char *out = malloc(cap);
    unsigned x = seed * 2654435761u + 1;
    off += (size_t)snprintf(out + off, cap - off, "[");
    for (int d = 0; d < n; d++) {
        off += (size_t)snprintf(out + off, cap - off, "%s\"", d ? "," : "");
        for (int w = 0; w < words; w++) {
            x = x * 1103515245u + 12345u;
            int t = (x >> 16) % 10 < 8 ? d % 4 : (int)((x >> 8) % 4);
            x = x * 1103515245u + 12345u;
            off += (size_t)snprintf(out + off, cap - off, "%s%s", w ? " " : "",
                                    topics[t][(x >> 16) % 8]);
        }
        off += (size_t)snprintf(out + off, cap - off, "\"");
    }
    snprintf(out + off, cap - off, "]");
    return out;
}

int main(int argc, char **argv)
{
    const char *topicd = NULL, *log_level = "warn";
    int nconn = 32, jobs = 60, workers = 1, http_threads = 2;
    double seconds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--topicd"))
            topicd = argv[i + 1];
        else if (!strcmp(argv[i], "--connections"))
            nconn = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--jobs"))
            jobs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--workers"))
            workers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--http-threads"))
            http_threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--log-level"))
            log_level = argv[i + 1];
    }
    if (!topicd) {
        fprintf(stderr, "usage: bench_http --topicd PATH [--connections C] [--seconds D] "
                        "[--jobs J] [--workers W] [--http-threads H] [--log-level L]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/topicd-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    /* A free port, picked here: at --log-level warn the server does not log
     * its "listening" line. */
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        socklen_t al = sizeof(a);
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
            getsockname(fd, (struct sockaddr *)&a, &al))
            return 1;
        port = ntohs(a.sin_port);
        close(fd);
    }
    char logpath[128], wbuf[16], hbuf[16], pbuf[16];
    snprintf(pbuf, sizeof(pbuf), "%d", port);
    snprintf(logpath, sizeof(logpath), "%s/server.log", dir);
    snprintf(wbuf, sizeof(wbuf), "%d", workers);
    snprintf(hbuf, sizeof(hbuf), "%d", http_threads);
    pid_t pid = fork();
    server_pid = pid;
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        execl(topicd, topicd, "serve", "--port", pbuf, "--data-dir", dir, "--workers", wbuf,
              "--http-threads", hbuf, "--log-level", log_level, "--shutdown-grace", "0",
              (char *)NULL);
        _exit(127);
    }
    int up = 0;
    for (int tries = 0; tries < 500 && !up; tries++) {
        usleep(10000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        up = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
    }
    if (!up) {
        fprintf(stderr, "bench_http: the server did not start (see %s)\n", logpath);
        kill(pid, SIGKILL);
        return 1;
    }
    printf("topicd serve --workers %d --http-threads %d --log-level %s on 127.0.0.1:%d, %ld "
           "CPUs\n",
           workers, http_threads, log_level, port, sysconf(_SC_NPROCESSORS_ONLN));

    /* A fit that runs until cancelled: NMF on 4000 x ~3000, tol 0. */
    size_t cap = 4000 * 60 * 8, off = 0;
    char *big = malloc(cap);
    unsigned x = 7;
    for (int d = 0; d < 4000; d++) {
        off += (size_t)snprintf(big + off, cap - off, "%sw", d ? "\n" : "");
        for (int w = 0; w < 50; w++) {
            x = x * 1103515245u + 12345u;
            off += (size_t)snprintf(big + off, cap - off, "%s%u", w ? " w" : "", (x >> 12) % 3000);
        }
    }
    int status;
    char *resp = request("POST", "/v1/corpora", "text/plain", big, off, &status);
    char cid[64], jid[64];
    json_field(resp, "id", cid, sizeof(cid));
    free(resp);
    free(big);
    char spec[256];
    int sl = snprintf(spec, sizeof(spec),
                      "{\"corpus_id\":\"%s\",\"model\":{\"method\":\"nmf\",\"n_topics\":20,"
                      "\"tol\":0,\"max_iter\":1000000000}}",
                      cid);
    resp = request("POST", "/v1/jobs", NULL, spec, (size_t)sl, &status);
    json_field(resp, "id", jid, sizeof(jid));
    free(resp);
    char path[128], state[32] = "";
    snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
    for (int i = 0; i < 1000 && strcmp(state, "running"); i++) {
        resp = request("GET", path, NULL, NULL, 0, &status);
        json_field(resp, "state", state, sizeof(state));
        free(resp);
        usleep(10000);
    }
    usleep(300000); /* into the iterations */
    poll_phase(jid, nconn, seconds);
    snprintf(path, sizeof(path), "/v1/jobs/%s:cancel", jid);
    free(request("POST", path, NULL, NULL, 0, &status));
    snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
    for (int i = 0; i < 1000 && strcmp(state, "cancelled"); i++) {
        resp = request("GET", path, NULL, NULL, 0, &status);
        json_field(resp, "state", state, sizeof(state));
        free(resp);
        usleep(10000);
    }

    /* Jobs per minute for small corpora. */
    char **ids = calloc((size_t)jobs, sizeof(char *));
    double t0 = now();
    int accepted = 0;
    for (int i = 0; i < jobs; i++) {
        char *docs = docs_json(200, 30, (unsigned)i);
        size_t cap2 = strlen(docs) + 256;
        char *body = malloc(cap2);
        int bl = snprintf(body, cap2,
                          "{\"documents\":%s,\"vectorizer\":{\"stop_words\":\"english\"},"
                          "\"model\":{\"method\":\"nmf\",\"n_topics\":5},\"seed\":%d}",
                          docs, i);
        resp = request("POST", "/v1/jobs", NULL, body, (size_t)bl, &status);
        if (status == 202) {
            ids[i] = malloc(64);
            json_field(resp, "id", ids[i], 64);
            accepted++;
        }
        free(resp);
        free(body);
        free(docs);
    }
    int done = 0, failed = 0;
    for (int i = 0; i < jobs; i++) {
        if (!ids[i])
            continue;
        snprintf(path, sizeof(path), "/v1/jobs/%s", ids[i]);
        for (;;) {
            resp = request("GET", path, NULL, NULL, 0, &status);
            json_field(resp, "state", state, sizeof(state));
            free(resp);
            if (!strcmp(state, "succeeded")) {
                done++;
                break;
            }
            if (!strcmp(state, "failed") || !strcmp(state, "cancelled") || !state[0]) {
                failed++;
                break;
            }
            usleep(2000);
        }
        free(ids[i]);
    }
    double el = now() - t0;
    free(ids);
    printf("small jobs (inline 200 documents x 30 words, NMF k=5): %d submitted, %d accepted, "
           "%d succeeded, %d failed in %.2f s = %.0f jobs/min\n",
           jobs, accepted, done, failed, el, done / el * 60);

    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd))
        return 1;
    return 0;
}
