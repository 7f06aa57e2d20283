/*
 * server.h - the one global state of `topicd serve` (Redis's server.h): its
 * configuration and the modules the HTTP handlers reach. Built by serve.c
 * before the HTTP threads start and torn down after they stop.
 * Thread-safety: the pointers are set once before threads start; the modules
 * they point to are thread-safe; draining is atomic.
 */
#ifndef TM_SERVER_SERVER_H
#define TM_SERVER_SERVER_H

#include <stdatomic.h>
#include <stddef.h>

#include "config.h"
#include "gpu_manager.h"
#include "jobs.h"
#include "keys.h"
#include "matrix_cache.h"
#include "session.h"
#include "store.h"

struct tm_server {
    const struct tm_config *cfg;
    struct tm_store store;
    struct tm_jobs *jobs;
    struct tm_matrix_cache *cache;
    struct tm_gpu_manager *gpu;
    struct tm_keys *keys; /* API keys' cache; auth mode in cfg->auth */
    /* Signs session cookies and links (session.h): the same on every
     * replica, from --secret-file or the store. */
    unsigned char secret[TM_SESSION_KEY_SIZE];
    atomic_int draining; /* 1 after SIGTERM: /readyz answers 503 */
    double started_at;
};

/* api/openapi.yaml, embedded at build time (Makefile: $(B)/gen/openapi_data.c). */
extern const unsigned char tm_openapi_yaml[];
extern const size_t tm_openapi_yaml_len;

/* The web page's files (api/ui/), embedded the same way ($(B)/gen/ui_data.c). */
extern const unsigned char tm_ui_index_html[], tm_ui_app_js[], tm_ui_app_css[];
extern const size_t tm_ui_index_html_len, tm_ui_app_js_len, tm_ui_app_css_len;

#endif
