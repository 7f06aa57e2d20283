/*
 * http.h - the libmicrohttpd front end: daemon set-up (epoll with a thread
 * pool, connection timeout, connection and per-IP limits, a per-connection
 * memory pool), the request lifecycle (request ids, body streaming with caps,
 * one JSON log line and the metrics per request in the completion callback),
 * and the response helpers routes.c answers with.
 * Thread-safety: tm_http_start/quiesce/stop from one thread (serve.c); the
 * handlers run on libmicrohttpd's pool threads, one request per thread at a
 * time.
 */
#ifndef TM_SERVER_HTTP_H
#define TM_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "api/error.h"
#include "metrics.h"
#include "server.h"
#include "upload.h"

struct MHD_Connection;
struct MHD_PostProcessor;

struct tm_http;

/* Starts listening on srv->cfg's address and port. *out owned. */
tm_status tm_http_start(struct tm_http **out, struct tm_server *srv, char *err);
/* The bound port (the chosen one when the configuration says 0). */
int tm_http_port(const struct tm_http *h);
/* Closes every connection and frees. NULL-safe. */
void tm_http_stop(struct tm_http *h);

/* ---------------------------------------------------------------------- */
/* Between http.c and routes.c. */

enum tm__body { TM__BODY_NONE, TM__BODY_BUFFER, TM__BODY_UPLOAD, TM__BODY_MULTIPART };

struct tm__req {
    struct tm_server *srv;
    struct MHD_Connection *conn;
    const char *method; /* libmicrohttpd's, valid for the request */
    char path[256];     /* for the log, cut if longer */
    enum tm_route route;
    char id[TM_ID_SIZE]; /* the {id} of the route */
    char request_id[72];
    struct timespec t0;
    int deferred; /* no body expected: routed once the request is complete */

    /* Response, once queued. */
    int responded;
    int status;
    uint64_t resp_bytes;
    /* Extra response headers for the next respond call. */
    char location[128];
    int retry_after; /* seconds; 0: none */
    const char *allow;

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

/* routes.c: called when the request line and headers are in (may respond
 * at once or set r->body), and when the body is complete. */
void tm__routes_begin(struct tm__req *r, const char *url);
void tm__routes_finish(struct tm__req *r);

#endif
