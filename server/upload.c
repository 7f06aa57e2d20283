/* upload.c - corpus uploads streamed into the store in batches (see upload.h). */
#include "upload.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/text/utf8.h"
#include "jobs.h"

/* A batch is written when it holds this many bytes or documents: big enough
 * that an fsync per batch is cheap per document, small enough to bound the
 * memory of each upload. */
#define BATCH_BYTES ((size_t)4 << 20)
#define BATCH_DOCS 4096

struct pending {
    size_t text_off, text_len, id_off, id_len;
    int has_id;
};

struct tm_upload {
    struct tm_store *store;
    char staging[TM_ID_SIZE];
    char target[TM_ID_SIZE];
    int append, finished;
    enum tm_corpus_format format;
    struct tm_upload_limits lim;
    struct tm_doc_stream *stream;
    char *json; /* a JSON body up to max_json_bytes, parsed whole at the end */
    size_t json_len, json_cap;
    struct pending *docs;
    size_t n, cap;
    char *arena;
    size_t arena_len, arena_cap;
    int64_t fed;
    /* The store refused a batch for the tenant's stored-bytes quota: the
     * rest of the body is read and dropped, and finish refuses with why. */
    int over_quota;
    char quota_msg[TM_ERR_SIZE];
    char tenant[TM_TENANT_SIZE];
};

/* The store's failure as the client sees it: out of memory (503), disk
 * full (507), anything else the store's (503, see http.c). */
static tm_status store_err(struct tm_api_error *e, tm_status st, const char *err)
{
    return tm_api_errorf(e, st == TM_ENOMEM || st == TM_ENOSPC ? st : TM_EIO, NULL, -1, "%s", err);
}

static tm_status flush(struct tm_upload *u, struct tm_api_error *e)
{
    if (u->n && u->over_quota) {
        u->n = 0;
        u->arena_len = 0;
    }
    if (!u->n)
        return TM_OK;
    struct tm_store_doc *sd = tm_mallocarray(u->n, sizeof(*sd));
    if (!sd)
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    for (size_t i = 0; i < u->n; i++) {
        sd[i].text = u->arena + u->docs[i].text_off;
        sd[i].len = u->docs[i].text_len;
        sd[i].id = u->docs[i].has_id ? u->arena + u->docs[i].id_off : NULL;
        sd[i].id_len = u->docs[i].id_len;
    }
    char err[TM_ERR_SIZE] = "";
    tm_status st = u->store->m->corpus_append(u->store->ctx, u->staging, sd, u->n, err);
    tm_free(sd);
    u->n = 0;
    u->arena_len = 0;
    if (st == TM_ETOOBIG) {
        /* What was stored goes now, not when the body ends. */
        u->over_quota = 1;
        snprintf(u->quota_msg, sizeof(u->quota_msg), "%s", err);
        u->store->m->corpus_delete(u->store->ctx, u->staging, err);
        return TM_OK;
    }
    return st ? store_err(e, st, err) : TM_OK;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *np = tm_reallocarray(*p, nc, elem);
    if (!np)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

static tm_status add(struct tm_upload *u, const char *text, size_t len, const char *id,
                     size_t id_len, const char *where, struct tm_api_error *e)
{
    size_t ok = tm_utf8_valid_prefix(text, len);
    if (ok != len)
        return tm_api_errorf(e, TM_EPARSE, where, -1,
                             "text is not valid UTF-8 (byte %zu of the document)", ok);
    if (id && tm_utf8_valid_prefix(id, id_len) != id_len)
        return tm_api_errorf(e, TM_EPARSE, where, -1, "id is not valid UTF-8");
    if (u->n && (u->n >= BATCH_DOCS || u->arena_len + len + id_len > BATCH_BYTES)) {
        tm_status st = flush(u, e);
        if (st)
            return st;
    }
    if (grow((void **)&u->docs, &u->cap, u->n + 1, sizeof(*u->docs)) ||
        grow((void **)&u->arena, &u->arena_cap, u->arena_len + len + id_len + 1, 1))
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    struct pending *p = &u->docs[u->n++];
    p->text_off = u->arena_len;
    p->text_len = len;
    memcpy(u->arena + u->arena_len, text, len);
    u->arena_len += len;
    p->has_id = id != NULL;
    p->id_off = u->arena_len;
    p->id_len = id ? id_len : 0;
    if (id) {
        memcpy(u->arena + u->arena_len, id, id_len);
        u->arena_len += id_len;
    }
    return TM_OK;
}

static tm_status sink(void *ctx, const struct tm_stream_doc *d, struct tm_api_error *e)
{
    struct tm_upload *u = ctx;
    char where[48];
    if (u->format == TM_CORPUS_JSON)
        snprintf(where, sizeof(where), "documents[%lld]", (long long)d->index);
    else
        snprintf(where, sizeof(where), "line %lld", (long long)d->line);
    return add(u, d->text, d->text_len, d->id, d->id_len, where, e);
}

static void limits_of(const struct tm_upload *u, struct tm_corpus_limits *cl)
{
    tm_corpus_limits_init(cl);
    cl->max_document_bytes = (size_t)u->lim.max_doc_bytes;
    cl->max_total_bytes = (size_t)u->lim.max_body_bytes;
}

tm_status tm_upload_set_format(struct tm_upload *u, enum tm_corpus_format format,
                               struct tm_api_error *e)
{
    u->format = format;
    if (format == TM_CORPUS_JSONL || format == TM_CORPUS_LINES) {
        struct tm_corpus_limits cl;
        limits_of(u, &cl);
        tm_status st = tm_doc_stream_new(&u->stream, format, &cl, sink, u);
        if (st)
            return tm_api_errorf(e, st, NULL, -1, "out of memory");
    }
    return TM_OK;
}

tm_status tm_upload_new(struct tm_upload **out, struct tm_store *store, const char *target,
                        const char *tenant, enum tm_corpus_format format,
                        const struct tm_upload_limits *limits, struct tm_api_error *e)
{
    *out = NULL;
    struct tm_upload *u = tm_calloc(1, sizeof(*u));
    if (!u)
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    u->store = store;
    u->lim = *limits;
    if (target) {
        u->append = 1;
        snprintf(u->target, sizeof(u->target), "%s", target);
    }
    tm_id_generate("c_", u->staging);
    struct tm_corpus_record c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "%s", u->staging);
    c.hidden = u->append;
    snprintf(c.tenant, sizeof(c.tenant), "%s", tenant && *tenant ? tenant : "default");
    snprintf(u->tenant, sizeof(u->tenant), "%s", c.tenant);
    c.created_at = tm_clock_unix();
    char err[TM_ERR_SIZE] = "";
    tm_status st = store->m->corpus_create(store->ctx, &c, err);
    if (st) {
        tm_free(u);
        return store_err(e, st, err);
    }
    if (format != TM_CORPUS_AUTO && (st = tm_upload_set_format(u, format, e))) {
        tm_upload_free(u);
        return st;
    }
    *out = u;
    return TM_OK;
}

/* From buffering to streaming: a JSON body past max_json_bytes is cut into
 * its documents as it arrives, the bytes so far first. */
static tm_status stream_json(struct tm_upload *u, struct tm_api_error *e)
{
    struct tm_corpus_limits cl;
    limits_of(u, &cl);
    tm_status st = tm_doc_stream_new(&u->stream, TM_CORPUS_JSON, &cl, sink, u);
    if (st)
        return tm_api_errorf(e, st, NULL, -1, "out of memory");
    st = tm_doc_stream_feed(u->stream, u->json ? u->json : "", u->json_len, e);
    tm_free(u->json);
    u->json = NULL;
    u->json_len = u->json_cap = 0;
    return st;
}

tm_status tm_upload_feed(struct tm_upload *u, const char *data, size_t len, struct tm_api_error *e)
{
    if ((uint64_t)u->fed + len > (uint64_t)u->lim.max_body_bytes)
        return tm_api_errorf(e, TM_ETOOBIG, NULL, -1, "the body exceeds the limit of %lld bytes",
                             (long long)u->lim.max_body_bytes);
    u->fed += (int64_t)len;
    if (u->stream)
        return tm_doc_stream_feed(u->stream, data, len, e);
    if (u->format != TM_CORPUS_JSON)
        return tm_api_errorf(e, TM_EINVAL, NULL, -1, "no format chosen for the upload");
    if (u->json_len + len > (size_t)u->lim.max_json_bytes) {
        /* Small bodies are parsed whole (api/'s exact rules and positions);
         * past the cap the body is split into documents as it arrives. */
        tm_status st = stream_json(u, e);
        return st ? st : tm_doc_stream_feed(u->stream, data, len, e);
    }
    if (grow((void **)&u->json, &u->json_cap, u->json_len + len + 1, 1))
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    memcpy(u->json + u->json_len, data, len);
    u->json_len += len;
    return TM_OK;
}

static tm_status finish_json(struct tm_upload *u, struct tm_api_error *e)
{
    struct tm_corpus_limits cl;
    limits_of(u, &cl);
    struct tm_corpus c;
    tm_corpus_init(&c, &cl);
    tm_status st = tm_corpus_parse(&c, u->json ? u->json : "", u->json_len, TM_CORPUS_JSON, e);
    /* The body is parsed: give its memory back before writing. */
    tm_free(u->json);
    u->json = NULL;
    u->json_len = u->json_cap = 0;
    for (int64_t i = 0; !st && i < c.n_docs; i++) {
        char where[48];
        snprintf(where, sizeof(where), "documents[%lld]", (long long)i);
        const char *id = c.ids ? c.ids[i] : NULL;
        st = add(u, c.docs[i].text, c.docs[i].len, id, id ? strlen(id) : 0, where, e);
    }
    tm_corpus_release(&c);
    return st;
}

tm_status tm_upload_finish(struct tm_upload *u, struct tm_corpus_record *out,
                           struct tm_api_error *e)
{
    tm_status st;
    if (u->stream)
        st = tm_doc_stream_finish(u->stream, e);
    else if (u->format == TM_CORPUS_JSON)
        st = finish_json(u, e);
    else
        st = tm_api_errorf(e, TM_EINVAL, NULL, -1, "the upload holds no file");
    if (!st)
        st = flush(u, e);
    if (st)
        return st;
    if (u->over_quota)
        return tm_api_errorf(e, TM_ETOOBIG, NULL, -1, "%s", u->quota_msg);
    char err[TM_ERR_SIZE] = "";
    const char *id = u->append ? u->target : u->staging;
    st = u->append ? u->store->m->corpus_adopt(u->store->ctx, u->target, u->staging, err)
                   : u->store->m->corpus_commit(u->store->ctx, u->staging, err);
    if (!st)
        st = u->store->m->corpus_get(u->store->ctx, id, out, err);
    if (st == TM_ENOTFOUND)
        return tm_api_errorf(e, TM_ENOTFOUND, NULL, -1, "corpus '%s' not found", id);
    if (st == TM_ETOOBIG) {
        u->over_quota = 1;
        return tm_api_errorf(e, TM_ETOOBIG, NULL, -1, "%s", err);
    }
    if (st)
        return store_err(e, st, err);
    u->finished = 1;
    return TM_OK;
}

int tm_upload_over_quota(const struct tm_upload *u)
{
    return u && u->over_quota;
}

const char *tm_upload_tenant(const struct tm_upload *u)
{
    return u->tenant;
}

void tm_upload_free(struct tm_upload *u)
{
    if (!u)
        return;
    if (!u->finished) {
        char err[TM_ERR_SIZE];
        u->store->m->corpus_delete(u->store->ctx, u->staging, err);
    }
    tm_doc_stream_free(u->stream);
    tm_free(u->json);
    tm_free(u->docs);
    tm_free(u->arena);
    tm_free(u);
}
