/* config.c - the settings table of `topicd serve` (see config.h). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/status.h"
#include "log.h"
#include "store.h"

enum kind { K_INT, K_I64, K_STR };

struct setting {
    const char *flag; /* without the leading "--" */
    const char *env;
    enum kind kind;
    const char *field; /* its name in struct tm_config and in the start-up line */
    size_t offset;
    size_t size; /* K_STR: buffer size */
    int64_t min, max;
    const char *help;
};

/* A field's name and offset, S its size: the table names each field once. */
#define F(field) #field, offsetof(struct tm_config, field)
#define S(field) sizeof(((struct tm_config *)0)->field)

static const struct setting settings[] = {
    {"bind", "TOPICD_BIND", K_STR, F(bind), S(bind), 0, 0, "listen address"},
    {"port", "TOPICD_PORT", K_INT, F(port), 0, 0, 65535, "TCP port (0: any free port)"},
    {"data-dir", "TOPICD_DATA_DIR", K_STR, F(data_dir), S(data_dir), 0, 0,
     "directory of the SQLite store (created if missing)"},
    {"store", "TOPICD_STORE", K_STR, F(store), S(store), 0, 0,
     "PostgreSQL instead of SQLite: postgresql://[user@]host[:port]/db or a libpq conninfo"},
    {"workers", "TOPICD_WORKERS", K_INT, F(workers), 0, 0, 1024,
     "worker threads running jobs (0: one per CPU)"},
    {"blas-threads", "TOPICD_BLAS_THREADS", K_INT, F(blas_threads), 0, 0, 1024,
     "OpenBLAS threads per process (0: max(1, cpus / workers))"},
    {"http-threads", "TOPICD_HTTP_THREADS", K_INT, F(http_threads), 0, 1, 256,
     "libmicrohttpd thread pool size"},
    {"max-body-bytes", "TOPICD_MAX_BODY_BYTES", K_I64, F(max_body_bytes), 0, 1, INT64_MAX,
     "largest corpus upload (k/m/g suffixes)"},
    {"max-json-bytes", "TOPICD_MAX_JSON_BYTES", K_I64, F(max_json_bytes), 0, 1, INT64_MAX,
     "largest job spec body"},
    {"max-doc-bytes", "TOPICD_MAX_DOC_BYTES", K_I64, F(max_doc_bytes), 0, 1, INT64_MAX,
     "largest single document"},
    {"max-inline-docs", "TOPICD_MAX_INLINE_DOCS", K_I64, F(max_inline_docs), 0, 0, INT64_MAX,
     "most documents inline in a job spec"},
    {"max-queue", "TOPICD_MAX_QUEUE", K_INT, F(max_queue), 0, 1, INT_MAX,
     "queued jobs before POST /v1/jobs answers 429"},
    {"quota-queued", "TOPICD_QUOTA_QUEUED", K_INT, F(max_queue_per_client), 0, 0, INT_MAX,
     "queued jobs of one tenant (with API keys; without, of one client: X-Client-Id, else"
     " address) before 429; 0: max-queue. Formerly --max-queue-per-client,"
     " TOPICD_MAX_QUEUE_PER_CLIENT (still accepted)"},
    {"quota-stored-bytes", "TOPICD_QUOTA_STORED_BYTES", K_I64, F(quota_stored), 0, 0, INT64_MAX,
     "bytes one tenant may keep (corpus text, job specs, results) before uploads and jobs get"
     " 413; 0: no quota"},
    {"quota-running", "TOPICD_QUOTA_RUNNING", K_INT, F(quota_running), 0, 0, INT_MAX,
     "jobs of one tenant running at once, across replicas; more wait queued; 0: no cap"},
    {"max-connections", "TOPICD_MAX_CONNECTIONS", K_INT, F(max_connections), 0, 1, 1000000,
     "concurrent HTTP connections"},
    {"per-ip-connections", "TOPICD_PER_IP_CONNECTIONS", K_INT, F(per_ip_connections), 0, 1, 1000000,
     "concurrent HTTP connections from one address"},
    {"connection-timeout", "TOPICD_CONNECTION_TIMEOUT", K_INT, F(connection_timeout_s), 0, 1, 86400,
     "seconds an idle connection is kept"},
    {"connection-memory", "TOPICD_CONNECTION_MEMORY", K_I64, F(connection_memory), 0, 8192, 1 << 30,
     "libmicrohttpd memory pool per connection"},
    {"cache-bytes", "TOPICD_CACHE_BYTES", K_I64, F(cache_bytes), 0, 0, INT64_MAX,
     "memory for cached TF-IDF matrices"},
    {"shutdown-grace", "TOPICD_SHUTDOWN_GRACE", K_INT, F(shutdown_grace_s), 0, 0, 86400,
     "seconds running jobs get to finish on SIGTERM before they are re-queued"},
    {"max-attempts", "TOPICD_MAX_ATTEMPTS", K_INT, F(max_attempts), 0, 1, 1000,
     "runs of a job interrupted by crashes before it is failed"},
    {"lease-seconds", "TOPICD_LEASE_SECONDS", K_INT, F(lease_s), 0, 1, 3600,
     "a running job's lease: renewed every third of it; a replica silent this long loses it"},
    {"worker-nice", "TOPICD_WORKER_NICE", K_INT, F(worker_nice), 0, 0, 19,
     "nice increment of worker threads, so polls preempt fits"},
    {"recent-jobs", "TOPICD_RECENT_JOBS", K_INT, F(recent_jobs), 0, 0, INT_MAX,
     "unused: job status is read from the store (accepted so that old settings load)"},
    {"job-retention", "TOPICD_JOB_RETENTION", K_I64, F(job_retention_s), 0, 0, INT64_MAX,
     "seconds a finished job (spec, result) is kept before it is deleted; 0: forever"},
    {"gpu", "TOPICD_GPU", K_STR, F(gpu), S(gpu), 0, 0,
     "auto: run jobs on a GPU when one is usable; off: never"},
    {"gpu-slots", "TOPICD_GPU_SLOTS", K_INT, F(gpu_slots), 0, 1, 64,
     "concurrent GPU jobs per device"},
    {"gpu-reserve-bytes", "TOPICD_GPU_RESERVE_BYTES", K_I64, F(gpu_reserve_bytes), 0, 0, INT64_MAX,
     "device memory kept free on every GPU"},
    {"gpu-wait", "TOPICD_GPU_WAIT", K_INT, F(gpu_wait_s), 0, 0, 86400,
     "seconds a \"device\": \"gpu\" job waits for room before it fails"},
    {"log-level", "TOPICD_LOG_LEVEL", K_STR, F(log_level), S(log_level), 0, 0,
     "debug, info, warn, error or off"},
    {"auth", "TOPICD_AUTH", K_STR, F(auth), S(auth), 0, 0,
     "API keys: auto (required once the store holds a key; without one, serving on a"
     " non-loopback address is refused), on (always required), off (never; says so)"},
    {"metrics-auth", "TOPICD_METRICS_AUTH", K_INT, F(metrics_auth), 0, 0, 1,
     "1: /metrics needs a key as /v1 does; 0: open"},
    {"cors-origin", "TOPICD_CORS_ORIGIN", K_STR, F(cors_origin), S(cors_origin), 0, 0,
     "web origins allowed to call from a browser, with credentials: exact"
     " scheme://host[:port], comma-separated (never *)"},
    {"secure-cookies", "TOPICD_SECURE_COOKIES", K_INT, F(secure_cookies), 0, 0, 1,
     "1: session cookies always Secure; 0: Secure when X-Forwarded-Proto says https"},
    {"session-ttl", "TOPICD_SESSION_TTL", K_INT, F(session_ttl_s), 0, 60, 30 * 86400,
     "seconds a session cookie (POST /v1/session) lasts"},
    {"secret-file", "TOPICD_SECRET_FILE", K_STR, F(secret_file), S(secret_file), 0, 0,
     "file holding the secret that signs session cookies and links (>= 32 bytes, the same"
     " on every replica); default: one made once and kept in the store"},
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Former names of settings, still accepted: the setting's flag, its old
 * flag and old variable. The new name wins when both are set. */
static const struct {
    const char *flag, *old_flag, *old_env;
} aliases[] = {
    {"quota-queued", "max-queue-per-client", "TOPICD_MAX_QUEUE_PER_CLIENT"},
};

#define N_ALIASES (sizeof(aliases) / sizeof(aliases[0]))

/* The setting whose flag is the n bytes at name, or whose former flag is
 * (NULL: none); old_env: the setting's former variable (NULL: none). */
static const struct setting *find_setting(const char *name, size_t n, const char **old_env)
{
    if (old_env)
        *old_env = NULL;
    const char *flag = NULL;
    for (size_t a = 0; a < N_ALIASES; a++)
        if (strlen(aliases[a].old_flag) == n && !strncmp(aliases[a].old_flag, name, n))
            flag = aliases[a].flag;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *f = flag ? flag : name;
        size_t fn = flag ? strlen(flag) : n;
        if (strlen(settings[i].flag) == fn && !strncmp(settings[i].flag, f, fn)) {
            for (size_t a = 0; old_env && a < N_ALIASES; a++)
                if (!strcmp(aliases[a].flag, settings[i].flag))
                    *old_env = aliases[a].old_env;
            return &settings[i];
        }
    }
    return NULL;
}

/* 1 for --store, a URL that may hold a password: checked for one on the
 * command line, and logged redacted. */
static int is_store(const struct setting *s)
{
    return s->offset == offsetof(struct tm_config, store);
}

void tm_config_init(struct tm_config *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->bind, "127.0.0.1");
    c->port = 8080;
    strcpy(c->data_dir, "./data");
    c->http_threads = 2;
    c->max_body_bytes = (int64_t)1 << 30;
    c->max_json_bytes = (int64_t)16 << 20;
    c->max_doc_bytes = (int64_t)8 << 20;
    c->max_inline_docs = 10000;
    c->max_queue = 1024;
    c->quota_stored = (int64_t)10 << 30;
    c->max_connections = 1024;
    c->per_ip_connections = 256;
    c->connection_timeout_s = 30;
    c->connection_memory = 64 * 1024;
    c->cache_bytes = (int64_t)512 << 20;
    c->shutdown_grace_s = 30;
    c->max_attempts = 3;
    c->lease_s = 30;
    c->recent_jobs = 4096;
    c->job_retention_s = 7 * 24 * 3600;
    c->worker_nice = 10;
    strcpy(c->gpu, "auto");
    c->gpu_slots = 2;
    c->gpu_reserve_bytes = (int64_t)512 << 20;
    c->gpu_wait_s = 600;
    strcpy(c->log_level, "info");
    strcpy(c->auth, "auto");
    c->session_ttl_s = 12 * 3600;
}

/* The next origin of a --cors-origin list at *p (spaces around it
 * skipped) into *o, *n bytes; 0 at the end of the list. */
static int next_origin(const char **p, const char **o, size_t *n)
{
    const char *s = *p;
    while (*s == ' ' || *s == ',')
        s++;
    if (!*s)
        return 0;
    size_t len = strcspn(s, ",");
    *p = s + len;
    while (len && s[len - 1] == ' ')
        len--;
    *o = s;
    *n = len;
    return 1;
}

/* 0 when the n bytes at o are an origin as a browser sends it:
 * http(s)://host[:port], nothing after; -1 with err filled. */
static int check_origin(const char *o, size_t n, char *err)
{
    size_t scheme = !strncmp(o, "https://", 8) ? 8 : !strncmp(o, "http://", 7) ? 7 : 0;
    const char *why = NULL;
    if (n == 1 && o[0] == '*')
        why = "a wildcard cannot go with credentials (cookies, Authorization): list each origin";
    else if (!scheme || n <= scheme)
        why = "an origin is http:// or https:// and a host";
    for (size_t i = scheme; !why && i < n; i++) {
        char ch = o[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']'))
            why = "an origin has no path, query, wildcard or spaces: scheme://host[:port]";
    }
    if (!why)
        return 0;
    tm_errf(err, TM_EINVAL, "--cors-origin: '%.*s': %s", (int)(n > 200 ? 200 : n), o, why);
    return -1;
}

int tm_config_cors_allows(const struct tm_config *c, const char *origin, size_t len)
{
    const char *p = c->cors_origin, *o;
    size_t n;
    while (next_origin(&p, &o, &n))
        if (n == len && !strncasecmp(o, origin, n))
            return 1;
    return 0;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s)
        return -1;
    int64_t mul = 1;
    switch (*end) {
    case 'k':
    case 'K':
        mul = 1024;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1024 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1024 * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }
    if (*end)
        return -1;
    if (v > 0 && v > INT64_MAX / mul)
        return -1;
    *out = (int64_t)v * mul;
    return 0;
}

static int apply(struct tm_config *c, const struct setting *s, const char *value, const char *from,
                 char *err)
{
    char *base = (char *)c + s->offset;
    if (s->kind == K_STR) {
        if (strlen(value) >= s->size) {
            tm_errf(err, TM_EINVAL, "%s: longer than %zu bytes", from, s->size - 1);
            return -1;
        }
        strcpy(base, value);
        return 0;
    }
    int64_t v;
    if (parse_i64(value, &v) || v < s->min || v > s->max) {
        tm_errf(err, TM_EINVAL, "%s: expected an integer in [%lld, %lld], got '%s'", from,
                (long long)s->min, (long long)s->max, value);
        return -1;
    }
    if (s->kind == K_INT)
        *(int *)(void *)base = (int)v;
    else
        *(int64_t *)(void *)base = v;
    return 0;
}

static const char *str_value(const struct tm_config *c, const struct setting *s)
{
    return (const char *)c + s->offset;
}

/* The value of a K_INT or K_I64 setting. */
static long long int_value(const struct tm_config *c, const struct setting *s)
{
    const void *p = (const char *)c + s->offset;
    return s->kind == K_INT ? *(const int *)p : (long long)*(const int64_t *)p;
}

void tm_config_usage(FILE *out)
{
    struct tm_config d;
    tm_config_init(&d);
    fputs("usage: topicd serve [options]\n"
          "\n"
          "Runs the HTTP job service. Each option can also be set by the environment\n"
          "variable shown; flags win over the environment.\n"
          "\n",
          out);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        char def[64];
        if (s->kind == K_STR)
            snprintf(def, sizeof(def), "%s", *str_value(&d, s) ? str_value(&d, s) : "none");
        else
            snprintf(def, sizeof(def), "%lld", int_value(&d, s));
        fprintf(out, "  --%-20s %s\n  %22s %s (default %s)\n", s->flag, s->env, "", s->help, def);
    }
    fputs("  --help                 show this help\n"
          "\n"
          "The PostgreSQL password never goes in --store (every user sees the command\n"
          "line): libpq reads PGPASSWORD and PGPASSFILE, and TOPICD_STORE_PASSWORD_FILE\n"
          "names a file holding it (its first line), as containers pass secrets.\n",
          out);
}

int tm_config_load(struct tm_config *c, int argc, char **argv, FILE *out, char *err)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *old_env;
        find_setting(settings[i].flag, strlen(settings[i].flag), &old_env);
        const char *old = old_env ? getenv(old_env) : NULL;
        if (old && *old && apply(c, &settings[i], old, old_env, err))
            return 2;
        const char *v = getenv(settings[i].env);
        if (v && *v && apply(c, &settings[i], v, settings[i].env, err))
            return 2;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            tm_config_usage(out);
            return 1;
        }
        if (strncmp(arg, "--", 2)) {
            tm_errf(err, TM_EINVAL, "unexpected argument '%s'", arg);
            return 2;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct setting *s = find_setting(name, nlen, NULL);
        if (!s) {
            tm_errf(err, TM_EINVAL, "unknown option '%.*s'", (int)(nlen + 2), arg);
            return 2;
        }
        const char *value = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
        if (!value) {
            tm_errf(err, TM_EINVAL, "option '--%s' needs a value", s->flag);
            return 2;
        }
        char from[64];
        snprintf(from, sizeof(from), "--%.*s", (int)nlen, name);
        if (apply(c, s, value, from, err))
            return 2;
        int has_password = 0;
        enum tm_store_driver driver;
        if (is_store(s) && !tm_store_parse(value, NULL, &driver, &has_password, NULL, err) &&
            has_password) {
            tm_errf(err, TM_EINVAL,
                    "--store: the URL holds a password, which the command line shows to every"
                    " user (ps): put the password in a file named by TOPICD_STORE_PASSWORD_FILE,"
                    " or in PGPASSWORD or PGPASSFILE, or the whole URL in TOPICD_STORE");
            return 2;
        }
    }
    enum tm_store_driver driver;
    if (tm_store_parse(c->store, c->data_dir, &driver, NULL, NULL, err))
        return 2;
    if (strcmp(c->auth, "auto") && strcmp(c->auth, "on") && strcmp(c->auth, "off")) {
        tm_errf(err, TM_EINVAL, "--auth: expected auto, on or off, got '%s'", c->auth);
        return 2;
    }
    const char *p = c->cors_origin, *o;
    size_t n;
    while (next_origin(&p, &o, &n))
        if (check_origin(o, n, err))
            return 2;
    if (strcmp(c->gpu, "auto") && strcmp(c->gpu, "off")) {
        tm_errf(err, TM_EINVAL, "--gpu: expected auto or off, got '%s'", c->gpu);
        return 2;
    }
    if (tm_log_level_parse(c->log_level) < 0) {
        tm_errf(err, TM_EINVAL, "--log-level: unknown level '%s'", c->log_level);
        return 2;
    }
    return 0;
}

void tm_config_log(const struct tm_config *c)
{
    struct tm_log_field f[N_SETTINGS + 1];
    char target[TM_STORE_TARGET_SIZE] = "";
    enum tm_store_driver driver = TM_STORE_SQLITE;
    size_t n = 0;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        f[n].name = s->field;
        f[n].type = s->kind == K_STR ? 's' : 'i';
        if (is_store(s)) {
            /* The driver, and where the store is: never the value itself. */
            char err[TM_ERR_SIZE];
            if (tm_store_parse(str_value(c, s), c->data_dir, &driver, NULL, target, err))
                snprintf(target, sizeof(target), "(invalid)");
            f[n].v.s = target;
            n++;
            f[n].name = "store_driver";
            f[n].type = 's';
            f[n].v.s = tm_store_driver_name(driver);
        } else if (s->kind == K_STR) {
            f[n].v.s = str_value(c, s);
        } else {
            f[n].v.i = int_value(c, s);
        }
        n++;
    }
    tm_log_fields(TM_LOG_INFO, "configuration", f, n);
}
