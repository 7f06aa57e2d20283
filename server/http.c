/*
 * http.c - libmicrohttpd set-up and the request lifecycle (see http.h).
 *
 * libmicrohttpd calls the access handler first with the headers (routes.c
 * answers bodiless requests right there, or says how to take the body), then
 * once per body chunk (fed to a capped buffer, an upload streaming into the
 * store, or the multipart parser feeding an upload), then once with no data
 * when the body is complete. The completion callback writes the request's
 * log line and metrics and frees everything the request held, whether it
 * ended normally, timed out or the client went away.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "log.h"
#include "metrics.h"

/*
 * Lingering: a request refused before its body was read (413, 415, 404, 429,
 * 503 from the headers) or whose body failed half-way is not answered and
 * closed at once, as a client that writes its whole body before it reads
 * (Python's urllib, most HTTP libraries but curl) would then fail its write
 * with a broken pipe or a reset and never see the answer. The rest of the
 * body is read and thrown away, and the answer goes out when the body ends,
 * as nginx's lingering close does. Both bounds keep a refused client from
 * holding a connection and a pool thread for long: past LINGER_BYTES
 * discarded or LINGER_SECONDS since the refusal, the answer is sent at once
 * and the connection closed on the rest. The byte bound lets a client get
 * its 413 after overrunning the limit many times (the uploads the limit is
 * there for) without streaming gigabytes into the void; the time bound is
 * nginx's lingering_timeout.
 */
#define LINGER_BYTES ((uint64_t)64 << 20)
#define LINGER_SECONDS 5.0

struct tm_http {
    struct tm_server *srv;
    const struct tm_http_router *router;
    struct MHD_Daemon *d;
    char id_prefix[16];
    atomic_ullong next_id;
};

/* ---------------------------------------------------------------------- */
/* Requests. */

const char *tm__req_header(struct tm__req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *tm__req_cookie(struct tm__req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

const char *tm__req_query(struct tm__req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

void tm__req_client_addr(struct tm__req *r, char *out, size_t size)
{
    snprintf(out, size, "unknown");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)size);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)size);
}

/* ---------------------------------------------------------------------- */
/* Responses. */

static void add_headers(struct tm__req *r, struct MHD_Response *resp, const char *content_type)
{
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* Pages (the web page, a job's report) run only this server's scripts
     * and show only its images; SVG charts run none at all. */
    if (content_type && !strncmp(content_type, "text/html", 9))
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; "
                                "style-src 'self' 'unsafe-inline'; object-src 'none'; "
                                "base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
    else if (content_type && !strncmp(content_type, "image/svg+xml", 13))
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; style-src 'unsafe-inline'");
    if (r->location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->retry_after > 0) {
        char s[16];
        snprintf(s, sizeof(s), "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, s);
    }
    if (r->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"topicd\"");
    if (r->set_cookie[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r->set_cookie);
    if (r->disposition[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, r->disposition);
    /* A cache between must not give one origin's answer to another. */
    if (r->cors)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    if (!r->cors_origin[0])
        return;
    /* The origin itself, never "*": browsers refuse "*" with credentials,
     * and cookies and Authorization are what this API takes. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, r->cors_origin);
    MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
    if (r->preflight[0]) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", r->preflight);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, Idempotency-Key, X-Request-Id,"
                                " X-Client-Id");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    } else {
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "Location, Retry-After, X-Request-Id, WWW-Authenticate, Allow");
    }
}

static double since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

static void queue(struct tm__req *r, int status, struct MHD_Response *resp, size_t len,
                  const char *content_type)
{
    if (!resp)
        return;
    add_headers(r, resp, content_type);
    if (r->beginning) {
        /* Held until the body is drained (see LINGER_BYTES). */
        r->held = resp;
        r->responded = 1;
        r->status = status;
        r->resp_bytes = len;
        clock_gettime(CLOCK_MONOTONIC, &r->refused_at);
        return;
    }
    if (MHD_queue_response(r->conn, (unsigned)status, resp) == MHD_YES) {
        r->responded = 1;
        r->status = status;
        r->resp_bytes = len;
    }
    MHD_destroy_response(resp);
}

/* Queues the answer held by queue(); 0, or -1 when libmicrohttpd refused it. */
static int release_held(struct tm__req *r)
{
    struct MHD_Response *resp = r->held;
    r->held = NULL;
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    if (ok != MHD_YES) {
        r->responded = 0;
        return -1;
    }
    return 0;
}

void tm__respond(struct tm__req *r, int status, const char *content_type, char *body, size_t len)
{
    if (r->responded) {
        tm_free(body);
        return;
    }
    struct MHD_Response *resp;
    if (body) {
        resp = MHD_create_response_from_buffer_with_free_callback(len, body, tm_free);
        if (!resp)
            tm_free(body);
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        len = 0;
    }
    queue(r, status, resp, len, content_type);
}

void tm__respond_static(struct tm__req *r, int status, const char *content_type, const void *body,
                        size_t len)
{
    if (r->responded)
        return;
    queue(r, status, MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT),
          len, content_type);
}

void tm__respond_error(struct tm__req *r, int status, const char *code, const char *message,
                       const char *field)
{
    size_t len;
    char *body = tm_render_error(code, message, field, &len);
    if (!body) {
        static const char oom[] =
            "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
        tm__respond_static(r, 503, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    tm__respond(r, status, "application/json", body, len);
}

void tm__respond_api_error(struct tm__req *r, const struct tm_api_error *e)
{
    int status = tm_api_error_http_status(e->status);
    if (e->status == TM_ENOTFOUND)
        status = 404;
    /* In the server, an I/O error is the store's (an upload's batch that
     * could not be written, PostgreSQL out of reach): retry later, as
     * routes.c answers every other store error. */
    if (e->status == TM_EIO)
        status = 503;
    if (status == 503)
        r->retry_after = 5;
    char *body = NULL;
    size_t len = 0;
    if (tm_api_error_render(e, &body, &len)) {
        tm__respond_error(r, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    tm__respond(r, status, "application/json", body, len);
}

/* ---------------------------------------------------------------------- */
/* Bodies. */

static void body_failed(struct tm__req *r, int status, const char *code,
                        const struct tm_api_error *e)
{
    if (r->failed)
        return;
    r->failed = 1;
    r->err = *e;
    r->err_status = status;
    snprintf(r->err_code, sizeof(r->err_code), "%s", code ? code : "");
    clock_gettime(CLOCK_MONOTONIC, &r->refused_at);
    /* Drop what the upload wrote so far now, not when the client is done. */
    tm_upload_free(r->upload);
    r->upload = NULL;
}

static void respond_failure(struct tm__req *r)
{
    if (r->err_code[0]) {
        tm__respond_error(r, r->err_status, r->err_code, r->err.message, r->err.field);
        return;
    }
    tm__respond_api_error(r, &r->err);
}

static enum MHD_Result part_iterator(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *filename, const char *content_type,
                                     const char *transfer_encoding, const char *data, uint64_t off,
                                     size_t size)
{
    struct tm__req *r = cls;
    struct tm_api_error e;
    tm_api_error_clear(&e);
    (void)kind;
    (void)transfer_encoding;
    if (r->failed)
        return MHD_NO;
    /* The file is a part with a file name, or the part named "file" (the
     * form field api/openapi.yaml names; a client that fills it from a
     * string sends no file name). Other fields carry nothing we use. */
    if (!filename && strcmp(key ? key : "", "file"))
        return MHD_YES;
    if (!r->part_seen) {
        r->part_seen = 1;
        snprintf(r->part_name, sizeof(r->part_name), "%s", key ? key : "");
        /* The part's type, else its file name's extension, else lines. */
        enum tm_corpus_format f = TM_CORPUS_LINES;
        const char *dot = filename ? strrchr(filename, '.') : NULL;
        if (content_type && (strstr(content_type, "ndjson") || strstr(content_type, "jsonl") ||
                             strstr(content_type, "json-lines")))
            f = TM_CORPUS_JSONL;
        else if (content_type && strstr(content_type, "application/json"))
            f = TM_CORPUS_JSON;
        else if (dot && (!strcasecmp(dot, ".jsonl") || !strcasecmp(dot, ".ndjson")))
            f = TM_CORPUS_JSONL;
        else if (dot && !strcasecmp(dot, ".json"))
            f = TM_CORPUS_JSON;
        if (tm_upload_set_format(r->upload, f, &e)) {
            body_failed(r, 0, NULL, &e);
            return MHD_NO;
        }
    } else if (off == 0 && size > 0 && strcmp(r->part_name, key ? key : "")) {
        tm_api_errorf(&e, TM_EINVAL, key, -1, "send one file per upload");
        body_failed(r, 400, "bad_request", &e);
        return MHD_NO;
    }
    if (size && tm_upload_feed(r->upload, data, size, &e)) {
        body_failed(r, 0, NULL, &e);
        return MHD_NO;
    }
    return MHD_YES;
}

static void feed(struct tm__req *r, const char *data, size_t size)
{
    struct tm_api_error e;
    tm_api_error_clear(&e);
    switch (r->body) {
    case TM__BODY_BUFFER:
        if (r->len + size > r->limit) {
            tm_api_errorf(&e, TM_ETOOBIG, NULL, -1, "the body exceeds the limit of %zu bytes",
                          r->limit);
            body_failed(r, 413, "too_large", &e);
            tm_free(r->buf);
            r->buf = NULL;
            return;
        }
        if (r->len + size + 1 > r->cap) {
            size_t nc = r->cap ? r->cap : 4096;
            while (nc < r->len + size + 1)
                nc *= 2;
            char *nb = tm_realloc(r->buf, nc);
            if (!nb) {
                tm_api_errorf(&e, TM_ENOMEM, NULL, -1, "out of memory");
                body_failed(r, 503, "out_of_memory", &e);
                return;
            }
            r->buf = nb;
            r->cap = nc;
        }
        memcpy(r->buf + r->len, data, size);
        r->len += size;
        r->buf[r->len] = 0;
        break;
    case TM__BODY_UPLOAD:
        if (tm_upload_feed(r->upload, data, size, &e))
            body_failed(r, 0, NULL, &e);
        break;
    case TM__BODY_MULTIPART:
        if (MHD_post_process(r->pp, data, size) != MHD_YES && !r->failed) {
            tm_api_errorf(&e, TM_EPARSE, NULL, -1, "malformed multipart/form-data body");
            body_failed(r, 400, "malformed_input", &e);
        }
        break;
    case TM__BODY_NONE:
        break;
    }
}

/* ---------------------------------------------------------------------- */
/* The handler. */

static int valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= 64 || !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
                         (s[n] >= '0' && s[n] <= '9') || s[n] == '-' || s[n] == '_' || s[n] == '.'))
            return 0;
    return n > 0;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    struct tm_http *h = cls;
    struct tm__req *r = *con_cls;
    (void)version;
    if (!r) {
        r = tm_calloc(1, sizeof(*r));
        if (!r) {
            /* Answered without a request of ours (libmicrohttpd's memory),
             * then the connection closes: nothing to log it with. */
            static const char oom[] =
                "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
            struct MHD_Response *resp = MHD_create_response_from_buffer(
                sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
            if (!resp)
                return MHD_NO;
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
            MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "5");
            enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE, resp);
            MHD_destroy_response(resp);
            return ok;
        }
        *con_cls = r;
        r->srv = h->srv;
        r->conn = conn;
        r->method = method;
        r->route = TM_METRICS_NO_ROUTE;
        r->route_label = TM_METRICS_OTHER;
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        snprintf(r->path, sizeof(r->path), "%s", url);
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (rid && valid_request_id(rid))
            snprintf(r->request_id, sizeof(r->request_id), "%s", rid);
        else
            snprintf(r->request_id, sizeof(r->request_id), "%s-%llx", h->id_prefix,
                     (unsigned long long)atomic_fetch_add_explicit(&h->next_id, 1,
                                                                   memory_order_relaxed));
        /* Requests without a body are begun on the next call, once the
         * request is complete (see struct tm_http_router). */
        if (!strcmp(method, "GET") || !strcmp(method, "HEAD") || !strcmp(method, "DELETE")) {
            r->deferred = 1;
            return MHD_YES;
        }
        r->beginning = 1;
        h->router->begin(r, url);
        if (r->body == TM__BODY_MULTIPART && !r->responded) {
            r->pp = MHD_create_post_processor(conn, 64 * 1024, part_iterator, r);
            if (!r->pp)
                tm__respond_error(r, 415, "unsupported_media_type",
                                  "multipart/form-data needs a boundary", NULL);
        }
        r->beginning = 0;
        /* A client that sent "Expect: 100-continue" waits for the answer
         * before it sends the body: no body to drain, answer now. */
        const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
        if (r->held && expect && strcasestr(expect, "100-continue"))
            return release_held(r) ? MHD_NO : MHD_YES;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->held || (r->failed && !r->responded)) {
            /* Refused: drain within the lingering bounds, then answer. */
            r->discarded += n;
            if (r->discarded <= LINGER_BYTES && since(&r->refused_at) <= LINGER_SECONDS)
                return MHD_YES;
            if (r->held)
                return release_held(r) ? MHD_NO : MHD_YES;
            respond_failure(r);
            return r->responded ? MHD_YES : MHD_NO;
        }
        if (r->responded)
            return MHD_YES;
        feed(r, upload_data, n);
        return MHD_YES;
    }
    if (r->held)
        return release_held(r) ? MHD_NO : MHD_YES;
    if (r->deferred) {
        r->deferred = 0;
        h->router->begin(r, url);
        if (!r->responded)
            tm__respond_error(r, 500, "internal_error", "no response", NULL);
        return r->responded ? MHD_YES : MHD_NO;
    }
    if (r->responded)
        return MHD_YES;
    if (r->pp && !r->failed) {
        MHD_destroy_post_processor(r->pp);
        r->pp = NULL;
        if (!r->part_seen) {
            struct tm_api_error e;
            tm_api_errorf(&e, TM_EINVAL, NULL, -1, "the form holds no file part");
            body_failed(r, 400, "bad_request", &e);
        }
    }
    if (r->failed)
        respond_failure(r);
    else
        h->router->body_done(r);
    if (!r->responded)
        tm__respond_error(r, 500, "internal_error", "no response", NULL);
    return r->responded ? MHD_YES : MHD_NO;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct tm__req *r = *con_cls;
    (void)cls;
    (void)conn;
    if (!r)
        return;
    *con_cls = NULL;
    double s = since(&r->t0);
    static const char *const ends[] = {"ok",       "error",      "timeout",
                                       "shutdown", "read_error", "client_abort"};
    const char *end = (unsigned)toe < sizeof(ends) / sizeof(ends[0]) ? ends[toe] : "unknown";
    int status = r->responded ? r->status : 0;
    tm_metrics_request(r->route, status, s);
    TM_LOG(TM_LOG_INFO, "request", "s:request_id", r->request_id, "s:method", r->method, "s:path",
           r->path, "s:route", r->route_label, "i:status", (long long)status, "i:bytes",
           (long long)r->resp_bytes, "f:duration_ms", s * 1e3, "s:end",
           toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? NULL : end, NULL);
    if (r->held)
        MHD_destroy_response(r->held);
    if (r->pp)
        MHD_destroy_post_processor(r->pp);
    tm_upload_free(r->upload);
    tm_free(r->buf);
    tm_free(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    TM_LOG(TM_LOG_WARN, "libmicrohttpd", "s:detail", msg, NULL);
}

/* ---------------------------------------------------------------------- */

tm_status tm_http_start(struct tm_http **out, struct tm_server *srv,
                        const struct tm_http_router *router, char *err)
{
    const struct tm_config *c = srv->cfg;
    *out = NULL;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)c->port);
    if (inet_pton(AF_INET, c->bind, &addr.sin_addr) != 1)
        return tm_errf(err, TM_EINVAL, "--bind: '%s' is not an IPv4 address", c->bind);
    struct tm_http *h = tm_calloc(1, sizeof(*h));
    if (!h)
        return tm_errf(err, TM_ENOMEM, "http");
    h->srv = srv;
    h->router = router;
    char rid[TM_ID_SIZE];
    tm_id_generate("", rid);
    snprintf(h->id_prefix, sizeof(h->id_prefix), "%.8s", rid);

    /* epoll in a pool of threads: each pool thread has its own epoll set
     * and accepts from the shared listening socket. */
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    h->d = MHD_start_daemon(flags, (uint16_t)c->port, NULL, NULL, access_handler, h,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->http_threads,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->connection_timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_connections,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)c->per_ip_connections,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->connection_memory,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, h,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!h->d) {
        tm_free(h);
        return tm_errf(err, TM_EIO, "cannot listen on %s:%d (in use, or not permitted)", c->bind,
                       c->port);
    }
    *out = h;
    return TM_OK;
}

int tm_http_port(const struct tm_http *h)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? (int)i->port : -1;
}

void tm_http_stop(struct tm_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    tm_free(h);
}
