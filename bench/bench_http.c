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
 * With --topology N it measures the shipped topology instead, in one run:
 * both phases against one replica directly, one replica through nginx, and
 * N replicas through nginx (docker/render-nginx.sh's configuration), all on
 * the PostgreSQL store --store (or $TOPICD_TEST_PG), with --workers workers
 * in all: W on the one replica, W/N on each of the N. --rounds R takes the
 * three in turns R times.
 *
 * usage: bench_http --topicd PATH [--connections C] [--seconds D] [--jobs J]
 *                   [--workers W] [--http-threads H] [--log-level L]
 *                   [--topology N [--store CONNINFO] [--nginx PATH] [--rounds R]]
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
#include <sys/stat.h>
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

/* Length of a complete response in buf (headers + Content-Length), or 0;
 * *closing says whether the server closes the connection after it (nginx
 * does after keepalive_requests responses on one connection). */
static size_t complete(const char *buf, size_t len, int *status, int *closing)
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
    const char *conn = strcasestr(buf, "\r\nConnection: close");
    *closing = conn && conn < end;
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

/* The servers of the setup being measured: their pids (for the fit's CPU
 * time) and, with nginx, its pid. */
#define MAX_REPLICAS 16
static pid_t server_pids[MAX_REPLICAS];
static int n_servers;

/* CPU seconds of the servers' worker threads (named "tm-worker", as are the
 * threads a job starts), i.e. the fit: the report shows how much it ran. */
static double worker_cpu(void)
{
    double total = 0;
    for (int s = 0; s < n_servers; s++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task", (int)server_pids[s]);
        DIR *d = opendir(path);
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
            if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) ==
                2)
                total += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
        }
        if (d)
            closedir(d);
    }
    return total;
}

struct figures {
    double polls_per_s, p50_ms, p99_ms, fit_core, jobs_per_min;
    long poll_errors;
    int jobs_failed;
};

static void poll_phase(const char *job_id, int nconn, double seconds, struct figures *fig)
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
                int status, closing;
                size_t used = complete(x->buf, x->len, &status, &closing);
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
                if (closing) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
                    close(x->fd);
                    x->fd = dial();
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = x};
                    epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &ev);
                    x->len = 0;
                }
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
    fig->polls_per_s = (double)n / elapsed;
    fig->p50_ms = n ? lat[n / 2] * 1e3 : 0;
    fig->p99_ms = n ? lat[(size_t)(n * 0.99)] * 1e3 : 0;
    fig->poll_errors = errors;
    fig->fit_core = fit_cpu / elapsed;
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

static const char *log_level = "warn";
static int nconn = 32, njobs = 60, http_threads = 2;
static double seconds = 5;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int p = -1;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
        !getsockname(fd, (struct sockaddr *)&a, &al))
        p = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return p;
}

/* 0 once 127.0.0.1:p accepts a connection, -1 if pid exits first or after
 * 10 s. (At --log-level warn the server does not log its "listening" line,
 * so the port is picked here and tried.) */
static int wait_up(pid_t pid, int p)
{
    for (int tries = 0; tries < 1000; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)p);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int up = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (up)
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return -1;
        usleep(10000);
    }
    return -1;
}

/* `topicd serve` on 127.0.0.1:p, its standard error to log: the SQLite store
 * in dir, or the PostgreSQL store (passed as TOPICD_STORE, as a container
 * would). */
/* --blas-threads of every server; 0: topicd's default, max(1, cores /
 * workers). --topology sets 1: replicas on one host share its cores, and
 * R replicas of one worker would each take every core (R times the threads
 * of one replica with R workers), which measures oversubscription, not
 * coordination. */
static int blas_threads;

static pid_t start_topicd(const char *topicd, int p, int workers, const char *dir,
                          const char *store, const char *log)
{
    char pbuf[16], wbuf[16], hbuf[16], tbuf[16];
    snprintf(tbuf, sizeof(tbuf), "%d", blas_threads);
    snprintf(pbuf, sizeof(pbuf), "%d", p);
    snprintf(wbuf, sizeof(wbuf), "%d", workers);
    snprintf(hbuf, sizeof(hbuf), "%d", http_threads);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 2);
        if (store)
            setenv("TOPICD_STORE", store, 1);
        execl(topicd, topicd, "serve", "--port", pbuf, "--data-dir", dir, "--workers", wbuf,
              "--http-threads", hbuf, "--log-level", log_level, "--shutdown-grace", "0",
              blas_threads ? "--blas-threads" : (char *)NULL, tbuf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* nginx on 127.0.0.1:listen in front of the ports, configured by
 * docker/render-nginx.sh in dir (access log to dir/access.log, as a
 * deployment would log); -1 if the rendering fails. */
static pid_t start_nginx(const char *nginx, const char *dir, int listen, const int *ports, int n)
{
    char ups[MAX_REPLICAS * 24] = "", lbuf[32], conf[512];
    for (int i = 0; i < n; i++)
        snprintf(ups + strlen(ups), sizeof(ups) - strlen(ups), "%s127.0.0.1:%d", i ? "," : "",
                 ports[i]);
    snprintf(lbuf, sizeof(lbuf), "127.0.0.1:%d", listen);
    snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
    pid_t pid = fork();
    if (pid == 0) {
        execl("docker/render-nginx.sh", "render-nginx.sh", "-l", lbuf, "-a", "access.log", ups,
              conf, (char *)NULL);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
        return -1;
    char errlog[512];
    snprintf(errlog, sizeof(errlog), "%s/error.log", dir);
    pid = fork();
    if (pid == 0) {
        execlp(nginx, nginx, "-p", dir, "-c", conf, "-e", errlog, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop(pid_t pid, int sig)
{
    int st;
    if (pid > 0 && !kill(pid, sig))
        waitpid(pid, &st, 0);
}

/* Both phases against 127.0.0.1:port, the servers up: 0, or -1 if the fit
 * did not start. */
static int measure(struct figures *fig)
{
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
    if (strcmp(state, "running")) {
        fprintf(stderr, "bench_http: the fit did not start (state \"%s\")\n", state);
        return -1;
    }
    usleep(300000); /* into the iterations */
    poll_phase(jid, nconn, seconds, fig);
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
    char **ids = calloc((size_t)njobs, sizeof(char *));
    double t0 = now();
    int accepted = 0;
    for (int i = 0; i < njobs; i++) {
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
    for (int i = 0; i < njobs; i++) {
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
    fig->jobs_per_min = done / el * 60;
    fig->jobs_failed = njobs - done;
    printf("small jobs (inline 200 documents x 30 words, NMF k=5): %d submitted, %d accepted, "
           "%d succeeded, %d failed in %.2f s = %.0f jobs/min\n",
           njobs, accepted, done, failed, el, fig->jobs_per_min);
    return 0;
}

/* One setup of --topology: `replicas` servers on the store with `workers`
 * workers each, measured directly (one replica) or through nginx. 0, or -1
 * on a failure. */
static int run_setup(const char *topicd, const char *nginx_bin, const char *store, int replicas,
                     int workers, int via_nginx, struct figures *fig)
{
    char dir[] = "/tmp/topicd-bench-XXXXXX";
    int ports[MAX_REPLICAS] = {0}, rc = 0;
    pid_t ngx = 0;
    char log[128], cmd[160];
    /* nginx's workers (nobody, when it starts as root) write under it. */
    if (!mkdtemp(dir) || chmod(dir, 0755))
        return -1;
    snprintf(log, sizeof(log), "%s/servers.log", dir);
    n_servers = 0;
    for (int i = 0; i < replicas && !rc; i++) {
        ports[i] = free_port();
        pid_t pid = start_topicd(topicd, ports[i], workers, dir, store, log);
        if (wait_up(pid, ports[i])) {
            rc = -1;
            fprintf(stderr, "bench_http: replica %d did not start (see %s)\n", i, log);
            stop(pid, SIGKILL);
            break;
        }
        server_pids[n_servers++] = pid;
    }
    if (!rc && via_nginx) {
        port = free_port();
        ngx = start_nginx(nginx_bin, dir, port, ports, replicas);
        if (ngx < 0 || wait_up(ngx, port)) {
            fprintf(stderr, "bench_http: nginx did not start (see %s/error.log)\n", dir);
            rc = -1;
        }
    } else if (!rc) {
        port = ports[0];
    }
    if (!rc) {
        printf("-- %d replica%s x %d worker%s, %s, on PostgreSQL\n", replicas,
               replicas > 1 ? "s" : "", workers, workers > 1 ? "s" : "",
               via_nginx ? "through nginx" : "direct");
        rc = measure(fig);
    }
    stop(ngx, SIGQUIT);
    for (int i = 0; i < n_servers; i++)
        stop(server_pids[i], SIGTERM);
    n_servers = 0;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (!rc && system(cmd))
        rc = -1;
    return rc;
}

static int cmp_fig_jobs(const void *a, const void *b)
{
    return cmp_double(&((const struct figures *)a)->jobs_per_min,
                      &((const struct figures *)b)->jobs_per_min);
}
static int cmp_fig_polls(const void *a, const void *b)
{
    return cmp_double(&((const struct figures *)a)->polls_per_s,
                      &((const struct figures *)b)->polls_per_s);
}

/* The median of n figures (n <= 16) of one setup, field by field. */
static struct figures median(const struct figures *f, int n)
{
    struct figures tmp[16], m;
    memcpy(tmp, f, (size_t)n * sizeof(*f));
    qsort(tmp, (size_t)n, sizeof(*tmp), cmp_fig_polls);
    m = tmp[n / 2];
    qsort(tmp, (size_t)n, sizeof(*tmp), cmp_fig_jobs);
    m.jobs_per_min = tmp[n / 2].jobs_per_min;
    return m;
}

static int topology(const char *topicd, const char *nginx_bin, const char *store, int replicas,
                    int workers, int rounds)
{
    enum { DIRECT, ONE_NGINX, N_NGINX, N_SETUPS };
    static const char *const names[N_SETUPS] = {"1 replica, direct", "1 replica, nginx",
                                                "N replicas, nginx"};
    struct figures fig[N_SETUPS][16];
    int have[N_SETUPS] = {0};
    if (workers % replicas)
        fprintf(stderr, "bench_http: %d workers do not split evenly over %d replicas\n", workers,
                replicas);
    int per = workers / replicas > 0 ? workers / replicas : 1;
    for (int r = 0; r < rounds; r++)
        for (int s = 0; s < N_SETUPS; s++) {
            int n = s == N_NGINX ? replicas : 1, w = s == N_NGINX ? per : workers;
            if (run_setup(topicd, nginx_bin, store, n, w, s != DIRECT, &fig[s][have[s]]))
                return 1;
            have[s]++;
        }
    printf("\n%d round%s, medians; %d workers in all on each setup, %d poll connections\n", rounds,
           rounds > 1 ? "s" : "", workers, nconn);
    printf("| setup | polls/s | p50 | p99 | small jobs/min |\n|---|---|---|---|---|\n");
    struct figures m[N_SETUPS];
    for (int s = 0; s < N_SETUPS; s++) {
        if (!have[s])
            continue;
        m[s] = median(fig[s], have[s]);
        char name[64];
        snprintf(name, sizeof(name), "%s", names[s]);
        if (s == N_NGINX)
            snprintf(name, sizeof(name), "%d replicas x %d, nginx", replicas, per);
        printf("| %s | %.0f | %.2f ms | %.2f ms | %.0f |\n", name, m[s].polls_per_s, m[s].p50_ms,
               m[s].p99_ms, m[s].jobs_per_min);
    }
    if (have[DIRECT] && have[ONE_NGINX])
        printf("polls/s, 1 replica through nginx / direct: %.2fx (target >= 0.5x)\n",
               m[ONE_NGINX].polls_per_s / m[DIRECT].polls_per_s);
    if (have[DIRECT] && have[N_NGINX]) {
        printf("polls/s, %d replicas through nginx / 1 direct: %.2fx (target >= 0.5x)\n", replicas,
               m[N_NGINX].polls_per_s / m[DIRECT].polls_per_s);
        printf("jobs/min, %d replicas through nginx / 1 replica direct: %.2fx (target >= 0.9x)\n",
               replicas, m[N_NGINX].jobs_per_min / m[DIRECT].jobs_per_min);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *topicd = NULL, *store = getenv("TOPICD_TEST_PG"), *nginx_bin = "nginx";
    int workers = 1, replicas = 0, rounds = 1, workers_set = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--topicd"))
            topicd = argv[i + 1];
        else if (!strcmp(argv[i], "--connections"))
            nconn = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--jobs"))
            njobs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--workers"))
            workers = atoi(argv[i + 1]), workers_set = 1;
        else if (!strcmp(argv[i], "--http-threads"))
            http_threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--log-level"))
            log_level = argv[i + 1];
        else if (!strcmp(argv[i], "--topology"))
            replicas = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--store"))
            store = argv[i + 1];
        else if (!strcmp(argv[i], "--nginx"))
            nginx_bin = argv[i + 1];
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
    }
    if (!topicd || replicas < 0 || replicas > MAX_REPLICAS || rounds < 1 || rounds > 16) {
        fprintf(stderr, "usage: bench_http --topicd PATH [--connections C] [--seconds D] "
                        "[--jobs J] [--workers W] [--http-threads H] [--log-level L]\n"
                        "       [--topology N [--store CONNINFO] [--nginx PATH] [--rounds R]]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (replicas) {
        if (!store || !store[0]) {
            fprintf(stderr, "bench_http: --topology needs a PostgreSQL store: --store CONNINFO "
                            "(make bench-http runs it in scripts/with-pg.sh)\n");
            return 2;
        }
        blas_threads = 1;
        printf("topicd serve --http-threads %d --log-level %s --blas-threads 1, %ld CPUs\n",
               http_threads, log_level, sysconf(_SC_NPROCESSORS_ONLN));
        return topology(topicd, nginx_bin, store, replicas, workers_set ? workers : replicas,
                        rounds);
    }

    char dir[] = "/tmp/topicd-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    port = free_port();
    char logpath[128];
    snprintf(logpath, sizeof(logpath), "%s/server.log", dir);
    pid_t pid = start_topicd(topicd, port, workers, dir, NULL, logpath);
    server_pids[0] = pid;
    n_servers = 1;
    if (wait_up(pid, port)) {
        fprintf(stderr, "bench_http: the server did not start (see %s)\n", logpath);
        kill(pid, SIGKILL);
        return 1;
    }
    printf("topicd serve --workers %d --http-threads %d --log-level %s on 127.0.0.1:%d, %ld "
           "CPUs\n",
           workers, http_threads, log_level, port, sysconf(_SC_NPROCESSORS_ONLN));
    struct figures fig;
    int rc = measure(&fig);
    stop(pid, SIGTERM);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd))
        return 1;
    return rc ? 1 : 0;
}
