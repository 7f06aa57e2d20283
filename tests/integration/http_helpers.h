/*
 * http_helpers.h - for the integration tests of `topicd serve`: start a real
 * server on a free port (--port 0, the port read from its "listening" log
 * line) with a temporary --data-dir, talk to it with libcurl on 127.0.0.1,
 * stop it with a signal or kill -9, and restart it on the same data.
 * Static functions so that each test file includes what it uses.
 */
#ifndef TM_TESTS_INTEGRATION_HTTP_HELPERS_H
#define TM_TESTS_INTEGRATION_HTTP_HELPERS_H

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TH_UNUSED __attribute__((unused))

struct th_server {
    pid_t pid;
    int port;
    char dir[256];
    char log[300];
};

struct th_resp {
    long status;
    char *body;
    size_t len;
    char location[256];
    char retry_after[32];
    char allow[128];
    char request_id[128];
    char content_type[128];
    char www_authenticate[128];
    char content_disposition[160];
};

TH_UNUSED static double th_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

TH_UNUSED static void th_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int th_curl_ready;
static pthread_once_t th_curl_once = PTHREAD_ONCE_INIT;
static void th_curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    th_curl_ready = 1;
}

/* A fresh temporary data directory in s->dir. */
TH_UNUSED static int th_tmpdir(struct th_server *s)
{
    const char *base = getenv("TMPDIR");
    snprintf(s->dir, sizeof(s->dir), "%s/topicd-test-XXXXXX", base ? base : "/tmp");
    return mkdtemp(s->dir) ? 0 : -1;
}

/* Reads the log until "listening" appears; returns the port or -1. */
static int th_wait_port(struct th_server *s, double timeout)
{
    double end = th_now() + timeout;
    while (th_now() < end) {
        FILE *f = fopen(s->log, "r");
        if (f) {
            char line[4096];
            int port = -1;
            while (fgets(line, sizeof(line), f)) {
                char *p = strstr(line, "\"msg\":\"listening\"");
                if (p && (p = strstr(line, "\"port\":")))
                    port = atoi(p + 7);
            }
            fclose(f);
            if (port > 0)
                return port;
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return -1;
        }
        th_sleep_ms(20);
    }
    return -1;
}

/*
 * Starts topicd serve on s->dir (made with th_tmpdir, or kept from a previous
 * run for a restart) with the extra arguments (NULL-terminated).
 */
TH_UNUSED static int th_start(struct th_server *s, ...)
{
    pthread_once(&th_curl_once, th_curl_init);
    char bin[1024];
    snprintf(bin, sizeof(bin), "%s/topicd", tm_test_bindir());
    snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "serve";
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--data-dir";
    argv[n++] = s->dir;
    /* Probing for a GPU costs a few tenths of a second per start; the test
     * that checks /v1/info asks for it with a later --gpu auto. */
    argv[n++] = "--gpu";
    argv[n++] = "off";
    va_list ap;
    va_start(ap, s);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 62)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    /* A restart appends to the same log: the new "listening" line is read
     * after the old one, so remove the old log first. */
    unlink(s->log);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    s->port = th_wait_port(s, 60);
    return s->port > 0 ? 0 : -1;
}

/* Waits up to timeout for the server to exit; its exit status, or -1. */
TH_UNUSED static int th_wait_exit(struct th_server *s, double timeout)
{
    double end = th_now() + timeout;
    while (th_now() < end) {
        int st;
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        th_sleep_ms(20);
    }
    return -1;
}

/* SIGTERM and wait: the exit status (0 for a graceful stop), or -1. */
TH_UNUSED static int th_stop(struct th_server *s)
{
    if (!s->pid)
        return -1;
    kill(s->pid, SIGTERM);
    int rc = th_wait_exit(s, 60);
    if (rc < 0 && s->pid) {
        kill(s->pid, SIGKILL);
        th_wait_exit(s, 10);
    }
    return rc;
}

TH_UNUSED static void th_kill9(struct th_server *s)
{
    if (!s->pid)
        return;
    kill(s->pid, SIGKILL);
    th_wait_exit(s, 30);
}

/* Stops the server if it runs and removes its data directory. */
TH_UNUSED static void th_cleanup(struct th_server *s)
{
    if (s->pid) {
        kill(s->pid, SIGKILL);
        th_wait_exit(s, 30);
    }
    if (s->dir[0]) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s->dir);
    }
}

static size_t th_write(char *p, size_t size, size_t n, void *ud)
{
    struct th_resp *r = ud;
    size_t add = size * n;
    char *nb = realloc(r->body, r->len + add + 1);
    if (!nb)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, add);
    r->len += add;
    r->body[r->len] = 0;
    return add;
}

static void th_header_value(const char *line, size_t n, const char *name, char *out, size_t size)
{
    size_t k = strlen(name);
    if (n <= k + 1 || strncasecmp(line, name, k) || line[k] != ':')
        return;
    const char *v = line + k + 1;
    while (*v == ' ')
        v++;
    size_t len = (size_t)(line + n - v);
    while (len && (v[len - 1] == '\r' || v[len - 1] == '\n'))
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(out, v, len);
    out[len] = 0;
}

static size_t th_header(char *p, size_t size, size_t n, void *ud)
{
    struct th_resp *r = ud;
    size_t len = size * n;
    th_header_value(p, len, "Location", r->location, sizeof(r->location));
    th_header_value(p, len, "Retry-After", r->retry_after, sizeof(r->retry_after));
    th_header_value(p, len, "Allow", r->allow, sizeof(r->allow));
    th_header_value(p, len, "X-Request-Id", r->request_id, sizeof(r->request_id));
    th_header_value(p, len, "Content-Type", r->content_type, sizeof(r->content_type));
    th_header_value(p, len, "WWW-Authenticate", r->www_authenticate, sizeof(r->www_authenticate));
    th_header_value(p, len, "Content-Disposition", r->content_disposition,
                    sizeof(r->content_disposition));
    return len;
}

TH_UNUSED static void th_resp_free(struct th_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/*
 * One request. content_type NULL: no body header; headers: NULL or a
 * NULL-terminated list of "Name: value". Returns the status (0 on a transport
 * error); r (may be NULL) receives the response and must be freed.
 */
TH_UNUSED static long th_request_h(const struct th_server *s, const char *method, const char *path,
                                   const char *content_type, const char *body, size_t len,
                                   const char *const *headers, struct th_resp *r)
{
    struct th_resp local = {0};
    struct th_resp *out = r ? r : &local;
    memset(out, 0, sizeof(*out));
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
    struct curl_slist *h = NULL;
    char ct[200];
    if (content_type) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        h = curl_slist_append(h, ct);
    }
    h = curl_slist_append(h, "Expect:");
    for (int i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, th_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    long status = out->status;
    if (!r)
        th_resp_free(&local);
    return status;
}

TH_UNUSED static long th_request(const struct th_server *s, const char *method, const char *path,
                                 const char *content_type, const char *body, struct th_resp *r)
{
    return th_request_h(s, method, path, content_type, body, body ? strlen(body) : 0, NULL, r);
}

TH_UNUSED static long th_get(const struct th_server *s, const char *path, struct th_resp *r)
{
    return th_request(s, "GET", path, NULL, NULL, r);
}

/* The response body as JSON (cJSON_Delete it), or NULL. */
TH_UNUSED static cJSON *th_json(const struct th_resp *r)
{
    return r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
}

TH_UNUSED static const char *th_str(const cJSON *o, const char *path)
{
    /* "error.code" style paths */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const cJSON *cur = o;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cJSON_IsString(cur) ? cur->valuestring : NULL;
}

TH_UNUSED static double th_num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* The "error.code" of an error response, into out. */
TH_UNUSED static const char *th_error_code(const struct th_resp *r, char *out, size_t size)
{
    out[0] = 0;
    cJSON *j = th_json(r);
    const char *c = j ? th_str(j, "error.code") : NULL;
    snprintf(out, size, "%s", c ? c : "(none)");
    cJSON_Delete(j);
    return out;
}

/* POSTs body to path; the "id" of the JSON answer into id (TM_ID_SIZE, ""
 * when there is none). Returns the status. */
TH_UNUSED static long th_post_for_id(const struct th_server *s, const char *path,
                                     const char *content_type, const char *body, size_t len,
                                     const char *const *headers, char *id)
{
    struct th_resp r;
    long st = th_request_h(s, "POST", path, content_type, body, len, headers, &r);
    id[0] = 0;
    cJSON *j = th_json(&r);
    const char *v = j ? th_str(j, "id") : NULL;
    if (v)
        snprintf(id, 40, "%s", v);
    cJSON_Delete(j);
    th_resp_free(&r);
    return st;
}

/* Uploads a corpus; its id into id (TM_ID_SIZE). Returns the status. */
TH_UNUSED static long th_upload(const struct th_server *s, const char *content_type,
                                const char *body, size_t len, char *id)
{
    return th_post_for_id(s, "/v1/corpora", content_type, body, len, NULL, id);
}

/* Submits a job spec (JSON text); its id into id. Returns the status. */
TH_UNUSED static long th_submit(const struct th_server *s, const char *spec, const char *key,
                                char *id)
{
    char kh[300];
    const char *hs[2] = {NULL, NULL};
    if (key) {
        snprintf(kh, sizeof(kh), "Idempotency-Key: %s", key);
        hs[0] = kh;
    }
    return th_post_for_id(s, "/v1/jobs", "application/json", spec, strlen(spec), hs, id);
}

/* A fit that only stops when asked: tol 0 and a huge max_iter. */
#define TH_ENDLESS_MODEL "{\"method\":\"nmf\",\"n_topics\":8,\"tol\":0,\"max_iter\":1000000000}"

/* POST /v1/jobs of {"corpus_id": cid, "model": model} (model a JSON object),
 * with an Idempotency-Key when key is not NULL; the id into id. */
TH_UNUSED static long th_submit_model(const struct th_server *s, const char *cid, const char *model,
                                      const char *key, char *id)
{
    char spec[512];
    snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\",\"model\":%s}", cid, model);
    return th_submit(s, spec, key, id);
}

/* method on the path fmt makes of id ("/v1/jobs/%s/result"), no body; the
 * HTTP status. */
TH_UNUSED static long th_request_id(const struct th_server *s, const char *method, const char *fmt,
                                    const char *id)
{
    char path[160];
    snprintf(path, sizeof(path), fmt, id);
    return th_request(s, method, path, NULL, NULL, NULL);
}

/* The state of a job into state (32 bytes); the HTTP status. */
TH_UNUSED static long th_job_state(const struct th_server *s, const char *id, char *state)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    struct th_resp r;
    long st = th_get(s, path, &r);
    state[0] = 0;
    cJSON *j = th_json(&r);
    const char *v = j ? th_str(j, "state") : NULL;
    snprintf(state, 32, "%s", v ? v : "");
    cJSON_Delete(j);
    th_resp_free(&r);
    return st;
}

/* Polls until the job is in a final state or timeout; the final state. */
TH_UNUSED static const char *th_wait_job(const struct th_server *s, const char *id, double timeout,
                                         char *state)
{
    double end = th_now() + timeout;
    do {
        th_job_state(s, id, state);
        if (!strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "cancelled"))
            return state;
        th_sleep_ms(20);
    } while (th_now() < end);
    return state;
}

/* Polls until the job reaches want (or a final state) or timeout. */
TH_UNUSED static int th_wait_state(const struct th_server *s, const char *id, const char *want,
                                   double timeout)
{
    char state[32];
    double end = th_now() + timeout;
    do {
        th_job_state(s, id, state);
        if (!strcmp(state, want))
            return 0;
        th_sleep_ms(10);
    } while (th_now() < end);
    return -1;
}

/* A synthetic JSON Lines corpus: n documents of words from topics, so a fit
 * has structure to find; deterministic. Returns malloc'd text. */
TH_UNUSED static char *th_corpus_jsonl(int n, int words, unsigned seed, size_t *len)
{
    static const char *const topics[4][8] = {
        {"cat", "dog", "pet", "fur", "paw", "tail", "vet", "leash"},
        {"stock", "bond", "market", "yield", "trader", "equity", "fund", "price"},
        {"planet", "orbit", "rocket", "nasa", "moon", "launch", "star", "comet"},
        {"pixel", "render", "shader", "image", "color", "vertex", "texture", "mesh"}};
    size_t cap = (size_t)n * ((size_t)words * 8 + 64) + 1, off = 0;
    char *out = malloc(cap);
    unsigned x = seed * 2654435761u + 1;
    for (int d = 0; d < n && out; d++) {
        int t = d % 4;
        off += (size_t)snprintf(out + off, cap - off, "{\"id\":\"d%d\",\"text\":\"", d);
        for (int w = 0; w < words; w++) {
            x = x * 1103515245u + 12345u;
            int tt = (x >> 16) % 10 < 8 ? t : (int)((x >> 8) % 4);
            x = x * 1103515245u + 12345u;
            off += (size_t)snprintf(out + off, cap - off, "%s%s", w ? " " : "",
                                    topics[tt][(x >> 16) % 8]);
        }
        off += (size_t)snprintf(out + off, cap - off, "\"}\n");
    }
    if (len)
        *len = off;
    return out;
}

/* A corpus whose NMF runs long: many distinct words (w0 .. w{vocab-1}). */
TH_UNUSED static char *th_corpus_big(int n, int words, int vocab, size_t *len)
{
    size_t cap = (size_t)n * ((size_t)words * 8 + 32) + 1, off = 0;
    char *out = malloc(cap);
    unsigned x = 12345;
    for (int d = 0; d < n && out; d++) {
        off += (size_t)snprintf(out + off, cap - off, "{\"text\":\"");
        for (int w = 0; w < words; w++) {
            x = x * 1103515245u + 12345u;
            off += (size_t)snprintf(out + off, cap - off, "%sw%u", w ? " " : "",
                                    (x >> 12) % (unsigned)vocab);
        }
        off += (size_t)snprintf(out + off, cap - off, "\"}\n");
    }
    if (len)
        *len = off;
    return out;
}

/* A TCP connection to the server, or -1. */
TH_UNUSED static int th_connect(const struct th_server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)s->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends raw bytes on a fresh connection and reads the reply (or until the
 * server closes); returns bytes read into buf, -1 on connect failure. */
TH_UNUSED static int th_raw(const struct th_server *s, const char *req, size_t len, int close_write,
                            char *buf, size_t size, double timeout)
{
    int fd = th_connect(s);
    if (fd < 0)
        return -1;
    if (len && send(fd, req, len, MSG_NOSIGNAL) < 0) {
        close(fd);
        return -1;
    }
    if (close_write)
        shutdown(fd, SHUT_WR);
    struct timeval tv = {(time_t)timeout, (long)((timeout - (double)(time_t)timeout) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t got = 0;
    while (got + 1 < size) {
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
    return (int)got;
}

#endif
