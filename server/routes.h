/*
 * routes.h - the REST API of `topicd serve` (api/openapi.yaml) as the
 * router http.c answers requests with. routes.c holds the one route table
 * that drives dispatch, 404, 405 with Allow, and the per-route metrics.
 * Thread-safety: the router runs on libmicrohttpd's pool threads, one
 * request per thread at a time; its table is read-only.
 */
#ifndef TM_SERVER_ROUTES_H
#define TM_SERVER_ROUTES_H

#include "http.h"

extern const struct tm_http_router tm_routes;

#endif
