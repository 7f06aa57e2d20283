/*
 * http.h - the libmicrohttpd front end: daemon set-up (epoll with a thread
 * pool, connection timeout, connection and per-IP limits, a per-connection
 * memory pool), the request lifecycle (request ids, body streaming with caps,
 * one JSON log line and the metrics per request in the completion callback),
 * and the request and response helpers a router (routes.h) answers with.
 * Only http.c includes libmicrohttpd.
 * Thread-safety: tm_http_start/stop from one thread (serve.c); the router
 * runs on libmicrohttpd's pool threads, one request per thread at a time.
 */
#ifndef TM_SERVER_HTTP_H
#define TM_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "api/error.h"
#include "server.h"
#include "upload.h"

struct MHD_Connection;
struct MHD_PostProcessor;
struct MHD_Response;

struct tm_http;
struct tm__req;

/*
 * What answers the requests (routes.h's tm_routes). begin has the request
 * line and headers: it answers, or sets r->body to take a body, and then
 * body_done runs once the body is complete (unless the body itself failed,
 * which http.c answers). GET, HEAD and DELETE are begun only once the whole
 * request is in: libmicrohttpd closes a connection whose response is queued
 * before that, and status polls live on keep-alive.
 */
struct tm_http_router {
    void (*begin)(struct tm__req *r, const char *url);
    void (*body_done)(struct tm__req *r);
};

/* Starts listening on srv->cfg's address and port, requests answered by
 * router (borrowed, must outlive the server). *out owned. */
tm_status tm_http_start(struct tm_http **out, struct tm_server *srv,
                        const struct tm_http_router *router, char *err);
/* The bound port (the chosen one when the configuration says 0). */
int tm_http_port(const struct tm_http *h);
/* Closes every connection and frees. NULL-safe. */
void tm_http_stop(struct tm_http *h);

/* ---------------------------------------------------------------------- */
/* For the router. */

enum tm__body { TM__BODY_NONE, TM__BODY_BUFFER, TM__BODY_UPLOAD, TM__BODY_MULTIPART };

struct tm__req {
    struct tm_server *srv;
    struct MHD_Connection *conn;
    const char *method; /* libmicrohttpd's, valid for the request */
    char path[256];     /* for the log, cut if longer */
    /* Set by the router when a route takes the request: its index for
     * tm_metrics_request and its label for the log; TM_METRICS_NO_ROUTE and
     * TM_METRICS_OTHER until then (metrics.h). */
    int route;
    const char *route_label;
    char id[TM_ID_SIZE]; /* the {id} of the route */
    char request_id[72];
    struct timespec t0;
    int deferred; /* no body expected: routed once the request is complete */

    /* Response, once queued (or held: see below). */
    int responded;
    int status;
    uint64_t resp_bytes;
    /* An answer given by the router's begin is held here and queued once
     * the body is drained, within http.c's lingering bounds; beginning is
     * set while begin runs. refused_at: when the answer was held or the
     * body failed; discarded: body bytes thrown away since. */
    int beginning;
    struct MHD_Response *held;
    struct timespec refused_at;
    uint64_t discarded;
    /* Extra response headers for the next respond call. */
    char location[128];
    int retry_after;      /* seconds; 0: none */
    char allow[32];       /* "": none */
    int www_authenticate; /* 1: "WWW-Authenticate: Bearer" (a 401) */
    /* CORS (routes.c decides): cors, --cors-origin is set, so every answer
     * says Vary: Origin; cors_origin, the request's Origin when the list
     * has it, echoed in Access-Control-Allow-Origin with credentials
     * allowed and the headers a client reads exposed ("" otherwise);
     * preflight, the methods a preflight's answer allows ("": none). */
    int cors;
    char cors_origin[256];
    char preflight[32];
    /* A Set-Cookie header for the answer (the session's); "": none. */
    char set_cookie[256];
    /* A Content-Disposition header (a download's); "": none. */
    char disposition[128];

    /* Who asked (routes.c's auth): the key's tenant, or "default" and admin
     * when no key is required. keyed: a key was required and given. */
    char tenant[TM_TENANT_SIZE];
    int admin, keyed;

    /* Body. */
    enum tm__body body;
    char *buf;
    size_t len, cap, limit;
    struct tm_upload *upload;
    struct MHD_PostProcessor *pp;
    int part_seen; /* multipart: a file part started */
    char part_name[128];
    /* An error found while the body was arriving, answered at its end. */
    int failed;
    struct tm_api_error err;
    int err_status;
    char err_code[40];
};

/* The request header name (case-insensitive), NULL when absent; valid for
 * the request. */
const char *tm__req_header(struct tm__req *r, const char *name);
/* The cookie name, NULL when absent; valid for the request. */
const char *tm__req_cookie(struct tm__req *r, const char *name);
/* The query argument name, decoded, NULL when absent; valid for the request. */
const char *tm__req_query(struct tm__req *r, const char *name);
/* The client's IP address as text into out ("unknown" when not known). */
void tm__req_client_addr(struct tm__req *r, char *out, size_t size);

/* Queue a response; body is taken (tm_free) and may be NULL for none. */
void tm__respond(struct tm__req *r, int status, const char *content_type, char *body, size_t len);
/* Static bytes (not freed). */
void tm__respond_static(struct tm__req *r, int status, const char *content_type, const void *body,
                        size_t len);
/* {"error":{...}} with status. */
void tm__respond_error(struct tm__req *r, int status, const char *code, const char *message,
                       const char *field);
/* An api/ error: its HTTP status, code, field and position. */
void tm__respond_api_error(struct tm__req *r, const struct tm_api_error *e);

#endif
