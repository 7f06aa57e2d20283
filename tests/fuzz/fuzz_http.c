/*
 * fuzz_http.c - libFuzzer target for everything that reads a request's
 * bytes, in the order a server does: libmicrohttpd's request line, headers,
 * query string and multipart parsers, then topicd's own: the route and its
 * path parameter, query parameters (limit, offset, after, state), headers
 * (Content-Type and its charset, Content-Length, Authorization's Bearer
 * key, Idempotency-Key, X-Client-Id, X-Request-Id), the multipart part
 * chooser and every body reader (job specs, JSON, JSON Lines and text
 * uploads) down to the store.
 *
 * Two real servers run in this process on loopback, on a SQLite store in
 * a temporary directory: one open (--auth off), one with API keys (an
 * admin key and a tenant's: FUZZ_ADMIN_KEY, FUZZ_TENANT_KEY below, which
 * the seeds use). The first byte of an input picks the server (its low
 * bit: '0' open, '1' keyed); the rest is sent as it is on one connection,
 * which is then half-closed, and its first answer read. Jobs are
 * "run" by a stand-in that succeeds at once with a one-topic result, so
 * that results and document topics can be asked for.
 *
 * The server must stay alive (an input it gives no answer must not keep it
 * from answering the next), and topicd's own answers must never
 * be a 5xx (no internal error, no store failure, whatever the bytes) and
 * must carry a JSON error body when they are a 4xx.
 *
 * `make fuzz` builds and runs it (tests/fuzz/README.md); the state of the
 * servers carries from one input to the next (corpora, jobs), so a crash
 * may need the inputs before it: running the crash file alone
 * (build/fuzz/fuzz_http FILE) says whether it does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "api/json.h"
#include "core/alloc.h"
#include "server/http.h"
#include "server/keys.h"
#include "server/log.h"
#include "server/routes.h"
#include "server/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seeds' keys (tests/fuzz/seeds/fuzz_http/): of the tenants "admin"
 * (an admin) and "t1". */
#define FUZZ_ADMIN_KEY "tpk_00000000000a_" HEX64_A
#define FUZZ_TENANT_KEY "tpk_00000000000b_" HEX64_B
#define HEX64_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX64_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

struct fuzz_server {
    struct tm_config cfg;
    struct tm_server srv;
    struct tm_http *http;
    int port;
};

static struct fuzz_server servers[2];

/* How long an answer may take to begin before the request is taken for
 * incomplete (and the server probed): for a request that looks complete,
 * far more than any answer here takes under ASan; for one that does not,
 * a little (the server may still refuse it at once). */
#define FIRST_BYTE_MS 200
#define FIRST_BYTE_INCOMPLETE_MS 5
static char data_dir[256];

/* The stand-in worker: a one-topic result for one document. */
static void work(void *ctx, const struct tm_job_run *run, struct tm_job_outcome *out)
{
    (void)ctx;
    (void)run;
    static const char result[] = "{\"topics\":[]}";
    out->status = TM_OK;
    out->result_json = tm_malloc(sizeof(result));
    out->doc_topics = tm_malloc(sizeof(double));
    if (!out->result_json || !out->doc_topics) {
        tm_free(out->result_json);
        tm_free(out->doc_topics);
        out->result_json = NULL;
        out->doc_topics = NULL;
        out->status = TM_ENOMEM;
        return;
    }
    memcpy(out->result_json, result, sizeof(result));
    out->result_len = sizeof(result) - 1;
    out->doc_topics[0] = 1.0;
    out->n_documents = 1;
    out->n_topics = 1;
}

static int add_key(struct tm_store *st, const char *key, const char *tenant, int admin)
{
    struct tm_key_record rec;
    char err[TM_ERR_SIZE];
    memset(&rec, 0, sizeof(rec));
    if (tm_key_parse(key, rec.id))
        return -1;
    snprintf(rec.tenant, sizeof(rec.tenant), "%s", tenant);
    rec.admin = admin;
    rec.created_at = 1;
    if (tm_key_hash(key, strlen(key), rec.hash))
        return -1;
    return st->m->key_create(st->ctx, &rec, err) ? -1 : 0;
}

static int start(struct fuzz_server *s, int keyed)
{
    char err[TM_ERR_SIZE] = "";
    struct tm_config *c = &s->cfg;
    tm_config_init(c);
    snprintf(c->bind, sizeof(c->bind), "127.0.0.1");
    c->port = 0;
    snprintf(c->data_dir, sizeof(c->data_dir), "%s/%s", data_dir, keyed ? "keyed" : "open");
    snprintf(c->auth, sizeof(c->auth), "%s", keyed ? "on" : "off");
    c->workers = 1;
    c->http_threads = 2;
    c->max_body_bytes = 64 * 1024; /* reached by the fuzzer now and then */
    c->max_json_bytes = 8 * 1024;  /* past it, a JSON upload is streamed */
    c->max_doc_bytes = 4 * 1024;
    c->max_inline_docs = 100;
    c->max_queue = 64;
    /* libmicrohttpd notices that a client closed its side before the end
     * of the headers only at the connection's timeout (a body cut short it
     * notices at once): at hundreds of inputs a second such inputs would
     * reach the per-IP limit within seconds. */
    c->connection_timeout_s = 1;
    c->max_connections = 4096;
    c->per_ip_connections = 4096;
    c->job_retention_s = 0;
    snprintf(c->gpu, sizeof(c->gpu), "off");
    if (mkdir(c->data_dir, 0700))
        return -1;
    memset(&s->srv, 0, sizeof(s->srv));
    s->srv.cfg = c;
    if (tm_store_open(&s->srv.store, NULL, c->data_dir, err) ||
        tm_matrix_cache_new(&s->srv.cache, 1 << 20))
        goto fail;
    if (keyed && (tm_keys_new(&s->srv.keys, &s->srv.store, TM_KEYS_TTL_S, err) ||
                  add_key(&s->srv.store, FUZZ_ADMIN_KEY, "admin", 1) ||
                  add_key(&s->srv.store, FUZZ_TENANT_KEY, "t1", 0)))
        goto fail;
    struct tm_jobs_config jc = {.workers = 1,
                                .max_queue = c->max_queue,
                                .max_attempts = c->max_attempts,
                                .worker_nice = 0,
                                .work = work,
                                .lease_s = c->lease_s};
    if (tm_jobs_new(&s->srv.jobs, &s->srv.store, &jc, err) ||
        tm_http_start(&s->http, &s->srv, &tm_routes, err))
        goto fail;
    s->port = tm_http_port(s->http);
    return s->port > 0 ? 0 : -1;
fail:
    fprintf(stderr, "fuzz_http: cannot start a server: %s\n", err);
    return -1;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void stop_all(void)
{
    for (int i = 0; i < 2; i++) {
        struct fuzz_server *s = &servers[i];
        tm_http_stop(s->http);
        s->http = NULL;
        tm_jobs_free(s->srv.jobs);
        tm_matrix_cache_free(s->srv.cache);
        tm_keys_free(s->srv.keys);
        tm_store_close(&s->srv.store);
        memset(&s->srv, 0, sizeof(s->srv));
    }
    if (data_dir[0])
        nftw(data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void init(void)
{
    tm_api_init();
    tm_log_set_level(TM_LOG_OFF);
    const char *base = access("/dev/shm", W_OK) ? getenv("TMPDIR") : "/dev/shm";
    snprintf(data_dir, sizeof(data_dir), "%s/topicd-fuzz-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(data_dir) || start(&servers[0], 0) || start(&servers[1], 1))
        abort();
    atexit(stop_all);
}

/* The number after "Content-Length:" at p, read no further than end; -1
 * when there is none. */
static long long header_number(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end || *p < '0' || *p > '9')
        return -1;
    long long v = 0;
    for (; p < end && *p >= '0' && *p <= '9' && v < (1LL << 40); p++)
        v = v * 10 + (*p - '0');
    return v;
}

/* The bytes of the first answer in buf (n bytes) once it is complete: its
 * headers and Content-Length bytes of body (none after a HEAD, head says);
 * 0 while it is not. */
static size_t answer_end(const char *buf, size_t n, int head)
{
    const char *end = memmem(buf, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t hdr = (size_t)(end - buf) + 4;
    long long length = 0;
    for (const char *l = memmem(buf, hdr, "\r\n", 2); l && l + 2 < end;
         l = memmem(l + 2, (size_t)(end - l - 2) + 2, "\r\n", 2))
        if (!strncasecmp(l + 2, "Content-Length:", 15))
            length = header_number(l + 17, end);
    if (head || length < 0)
        length = 0;
    return n >= hdr + (size_t)length ? hdr + (size_t)length : 0;
}

/* Reports a broken property (with the answer, when there is one) and
 * stops, as libFuzzer wants a crash. */
static void fail(const char *why, const char *answer)
{
    fprintf(stderr, "fuzz_http: %s\n%s%s", why, answer ? answer : "", answer ? "\n" : "");
    __builtin_trap();
}

/* 1 when req (len bytes) looks like whole requests: its headers end and
 * its body has the bytes Content-Length says. */
static int looks_complete(const char *req, size_t len)
{
    const char *end = memmem(req, len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t hdr = (size_t)(end - req) + 4;
    for (const char *l = memmem(req, hdr, "\r\n", 2); l && l < end;
         l = memmem(l + 2, (size_t)(end - l), "\r\n", 2))
        if (!strncasecmp(l + 2, "Content-Length:", 15))
            return header_number(l + 17, end) <= (long long)(len - hdr);
    return 1;
}

/* poll on one descriptor for up to ms, resumed after a signal (libFuzzer's
 * SIGALRM) with the time left: an interrupted wait must not read as an
 * answer. */
static int poll_interruptible(struct pollfd *pfd, int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        int left = spent >= ms ? 0 : ms - (int)spent;
        int n = poll(pfd, 1, left);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

/* The first answer to the request on port, into *out (malloc'd, what was
 * read: the answer, or less when the server closed first). 0 when it came
 * (or the server closed), 1 when nothing came within first_ms, -1 when an
 * answer begun did not end within 10 s. The connection is closed after
 * the first answer: libmicrohttpd would keep it open for pipelined
 * requests, and it notices a client's half-close before the end of the
 * headers only at its connection timeout, so waiting for its close would
 * cost seconds an input. */
static int exchange(int port, const char *req, size_t len, int first_ms, char **out,
                    size_t *out_len)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Each socket is closed with a reset, so that no TIME_WAIT is left: a
     * clean-clone make fuzz aborted here after 16,396 inputs in 30 s,
     * about the loopback's 28,000 ephemeral ports at two connections an
     * input. Should ports still run short, wait for them. */
    int fd = -1;
    for (int tries = 0;; tries++) {
        if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
            fprintf(stderr, "fuzz_http: socket: %s\n", strerror(errno));
            abort();
        }
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        if (!connect(fd, (struct sockaddr *)&a, sizeof(a)))
            break;
        int e = errno;
        close(fd);
        /* libFuzzer's SIGALRM (its -timeout watch, every -timeout / 2 + 1
         * seconds) interrupts a connect on a socket with SO_SNDTIMEO, which
         * is never restarted (signal(7)): a clean-clone make fuzz aborted
         * here with EINTR. */
        if (e == EINTR)
            continue;
        if (e != EADDRNOTAVAIL || tries == 200) {
            fprintf(stderr, "fuzz_http: connect: %s\n", strerror(e));
            abort();
        }
        poll(NULL, 0, 10);
    }
    /* The server may answer and close before it has read everything
     * (an early 413 or 415): a failed send is not an error. */
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    int head = len >= 5 && !memcmp(req, "HEAD ", 5);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        abort();
    int rc = 0;
    struct pollfd pfd = {fd, POLLIN, 0};
    int ready = poll_interruptible(&pfd, first_ms);
    if (ready == 0) {
        rc = 1;
        goto out;
    }
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            if (!buf)
                abort();
        }
        ssize_t got = recv(fd, buf + n, cap - n, 0);
        if (got > 0) {
            n += (size_t)got;
            if (answer_end(buf, n, head))
                break;
            continue;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            rc = -1;
        break;
    }
out:
    close(fd);
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return rc;
}

/* Checks the first answer in resp (n bytes). */
static void check_answer(const char *resp, size_t n)
{
    if (n < 12 || strncmp(resp, "HTTP/1.", 7))
        return; /* closed without an answer: the request was incomplete */
    int status = atoi(resp + 9);
    if (status < 100 || status > 599)
        fail("a status out of range", resp);
    const char *end = strstr(resp, "\r\n\r\n");
    if (!end)
        return;
    size_t head = (size_t)(end - resp);
    int json = 0, has_request_id = 0;
    long long length = -1;
    for (const char *l = strstr(resp, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (!strncasecmp(h, "Content-Type: application/json", 31))
            json = 1;
        else if (!strncasecmp(h, "X-Request-Id:", 13))
            has_request_id = 1;
        else if (!strncasecmp(h, "Content-Length:", 15))
            length = atoll(h + 15);
    }
    /* libmicrohttpd's own answers (a malformed request line, a header too
     * big for the connection's pool) carry no request id; topicd's do. */
    if (!has_request_id)
        return;
    if (status >= 500)
        fail("a 5xx from topicd", resp);
    if (status < 400 || !json || length <= 0 || (size_t)length > n - head - 4)
        return; /* a HEAD, or an answer cut short */
    struct tm_json_doc doc;
    struct tm_api_error e;
    if (tm_json_parse(&doc, end + 4, (size_t)length, &e))
        fail("an error answer that is not JSON", resp);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(doc.root, "error");
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(err, "code")) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(err, "message")))
        fail("an error answer without error.code and error.message", resp);
    tm_json_release(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int started;
    if (!started) {
        init();
        started = 1;
    }
    if (size < 2)
        return 0;
    char *resp;
    size_t n;
    const struct fuzz_server *s = &servers[data[0] & 1];
    const char *req = (const char *)data + 1;
    int first_ms = looks_complete(req, size - 1) ? FIRST_BYTE_MS : FIRST_BYTE_INCOMPLETE_MS;
    int rc = exchange(s->port, req, size - 1, first_ms, &resp, &n);
    if (rc < 0)
        fail("an answer begun and not ended within 10 s", resp);
    check_answer(resp, n);
    free(resp);
    /* No answer yet: the request is incomplete (the server waits for the
     * rest), or the server is stuck; it must still answer another. */
    if (rc > 0) {
        static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        rc = exchange(s->port, probe, sizeof(probe) - 1, 10000, &resp, &n);
        if (rc || strncmp(resp, "HTTP/1.1 200 ", 13))
            fail(rc ? "no answer to GET /healthz within 10 s after an unanswered request"
                    : "GET /healthz closed or refused after an unanswered request",
                 resp);
        free(resp);
    }
    return 0;
}
