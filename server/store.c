/*
 * store.c - choosing a store driver from --store (see store.h), and what the
 * drivers share: the redacted target, the password file, the packing of
 * document ids, the list of wake-up listeners.
 */
#include "store.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

static int starts_with(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

const char *tm_store_driver_name(enum tm_store_driver driver)
{
    return driver == TM_STORE_PG ? "postgresql" : "sqlite";
}

/* Appends " key=value" (or "key=value" first) to out when value is set. */
static void add_field(char *out, const char *key, const char *value)
{
    if (!value || !*value)
        return;
    size_t n = strlen(out);
    if (n + 1 >= TM_STORE_TARGET_SIZE)
        return;
    snprintf(out + n, TM_STORE_TARGET_SIZE - n, "%s%s=%s", n ? " " : "", key, value);
}

tm_status tm_store_parse(const char *url_or_null, const char *data_dir,
                         enum tm_store_driver *driver, int *has_password, char *target, char *err)
{
    if (has_password)
        *has_password = 0;
    if (!url_or_null || !*url_or_null) {
        *driver = TM_STORE_SQLITE;
        if (target)
            snprintf(target, TM_STORE_TARGET_SIZE, "%s", data_dir ? data_dir : "");
        return TM_OK;
    }
    *driver = TM_STORE_PG;
    int uri = starts_with(url_or_null, "postgresql://") || starts_with(url_or_null, "postgres://");
    if (!uri && !strchr(url_or_null, '='))
        return tm_errf(err, TM_EINVAL,
                       "--store: expected postgresql://..., postgres://... or a libpq conninfo"
                       " string (host=... dbname=...); without --store, the SQLite store in"
                       " --data-dir is used");
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url_or_null, &perr);
    if (!opts) {
        /* libpq's message may quote the value, password and all: it is shown
         * only when the value cannot hold one. */
        int may_hold = strchr(url_or_null, '@') || strstr(url_or_null, "password");
        tm_status st = perr ? TM_EINVAL : TM_ENOMEM;
        size_t n = perr ? strcspn(perr, "\n") : 0;
        tm_errf(err, st, "--store: not a valid PostgreSQL URL or conninfo string%s%.*s",
                perr && !may_hold ? ": " : "", may_hold ? 0 : (int)n, perr ? perr : "");
        PQfreemem(perr);
        return st;
    }
    char out[TM_STORE_TARGET_SIZE] = "";
    const char *host = NULL, *port = NULL, *dbname = NULL, *user = NULL, *hostaddr = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (!strcmp(o->keyword, "password") && *o->val && has_password)
            *has_password = 1;
        else if (!strcmp(o->keyword, "host"))
            host = o->val;
        else if (!strcmp(o->keyword, "hostaddr"))
            hostaddr = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
        else if (!strcmp(o->keyword, "dbname"))
            dbname = o->val;
        else if (!strcmp(o->keyword, "user"))
            user = o->val;
    }
    add_field(out, "host", host ? host : hostaddr);
    add_field(out, "port", port);
    add_field(out, "dbname", dbname);
    add_field(out, "user", user);
    if (target)
        snprintf(target, TM_STORE_TARGET_SIZE, "%s", out[0] ? out : "(libpq defaults)");
    PQconninfoFree(opts);
    return TM_OK;
}

/* The password in the file TOPICD_STORE_PASSWORD_FILE names: *out NULL when
 * the variable is unset, else owned (tm_free): the file's first line. */
static tm_status password_from_file(char **out, char *err)
{
    *out = NULL;
    const char *path = getenv("TOPICD_STORE_PASSWORD_FILE");
    if (!path || !*path)
        return TM_OK;
    FILE *f = fopen(path, "r");
    if (!f)
        return tm_errf(err, TM_EIO, "store: TOPICD_STORE_PASSWORD_FILE: cannot open %s: %s", path,
                       strerror(errno));
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return tm_errf(err, TM_EIO, "store: TOPICD_STORE_PASSWORD_FILE: cannot read %s", path);
    buf[n] = 0;
    n = strcspn(buf, "\r\n");
    if (!n)
        return tm_errf(err, TM_EINVAL, "store: TOPICD_STORE_PASSWORD_FILE: %s is empty", path);
    *out = tm_strndup(buf, n);
    /* The copy on the stack goes before the buffer is reused. */
    memset(buf, 0, sizeof(buf));
    return *out ? TM_OK : tm_errf(err, TM_ENOMEM, "store");
}

tm_status tm_store_open(struct tm_store *s, const char *url_or_null, const char *data_dir,
                        char *err)
{
    memset(s, 0, sizeof(*s));
    enum tm_store_driver driver;
    tm_status st = tm_store_parse(url_or_null, data_dir, &driver, NULL, NULL, err);
    if (st)
        return st;
    if (driver == TM_STORE_SQLITE)
        return tm_store_open_sqlite(s, data_dir, err);
    char *password = NULL;
    st = password_from_file(&password, err);
    if (st)
        return st;
    st = tm_store_open_pg(s, url_or_null, password, err);
    if (password) {
        memset(password, 0, strlen(password));
        tm_free(password);
    }
    return st;
}

void tm_store_close(struct tm_store *s)
{
    if (s->m)
        s->m->close(s->ctx);
    memset(s, 0, sizeof(*s));
}

void tm_store_docs_release(struct tm_store_docs *d)
{
    if (d->ids)
        for (int64_t i = 0; i < d->n; i++)
            tm_free(d->ids[i]);
    tm_free(d->ids);
    tm_free(d->offsets);
    tm_free(d->pool);
    memset(d, 0, sizeof(*d));
}

tm_status tm__store_pack_ids(char *const *ids, int64_t rows, char **out, size_t *len, char *err)
{
    size_t n = 0;
    for (int64_t i = 0; i < rows; i++)
        n += 2 + (ids[i] ? strlen(ids[i]) : 0);
    char *b = tm_malloc(n ? n : 1);
    if (!b)
        return tm_errf(err, TM_ENOMEM, "store: document ids");
    size_t o = 0;
    for (int64_t i = 0; i < rows; i++) {
        size_t l = ids[i] ? strlen(ids[i]) : 0;
        b[o++] = ids[i] ? 1 : 0;
        if (l)
            memcpy(b + o, ids[i], l);
        o += l;
        b[o++] = 0;
    }
    *out = b;
    *len = n;
    return TM_OK;
}

tm_status tm__store_unpack_ids(const char *b, size_t len, char **ids, int64_t rows, char *err)
{
    size_t o = 0;
    for (int64_t i = 0; i < rows && o < len; i++) {
        int has = b[o++];
        size_t l = strnlen(b + o, len - o);
        if (has && !(ids[i] = tm_strndup(b + o, l)))
            return tm_errf(err, TM_ENOMEM, "store: document ids");
        o += l + 1;
    }
    return TM_OK;
}

void tm__store_listeners_init(struct tm__store_listeners *ls)
{
    memset(ls, 0, sizeof(*ls));
    pthread_mutex_init(&ls->lock, NULL);
}

void tm__store_listeners_release(struct tm__store_listeners *ls)
{
    pthread_mutex_destroy(&ls->lock);
}

tm_status tm__store_listeners_add(struct tm__store_listeners *ls, tm_store_wake_fn fn, void *arg,
                                  char *err)
{
    tm_status st = TM_OK;
    pthread_mutex_lock(&ls->lock);
    if (ls->n < TM__STORE_MAX_LISTENERS) {
        ls->l[ls->n].fn = fn;
        ls->l[ls->n].arg = arg;
        ls->n++;
    } else {
        st = tm_errf(err, TM_ENOMEM, "store: more than %d listeners", TM__STORE_MAX_LISTENERS);
    }
    pthread_mutex_unlock(&ls->lock);
    return st;
}

void tm__store_listeners_remove(struct tm__store_listeners *ls, void *arg)
{
    pthread_mutex_lock(&ls->lock);
    for (int i = 0; i < ls->n; i++)
        if (ls->l[i].arg == arg) {
            ls->l[i] = ls->l[--ls->n];
            break;
        }
    pthread_mutex_unlock(&ls->lock);
}

void tm__store_listeners_wake(struct tm__store_listeners *ls, enum tm_store_wake what)
{
    pthread_mutex_lock(&ls->lock);
    for (int i = 0; i < ls->n; i++)
        ls->l[i].fn(ls->l[i].arg, what);
    pthread_mutex_unlock(&ls->lock);
}
