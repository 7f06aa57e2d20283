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
    char *json;
    size_t json_len, json_cap;
    struct splitter *sp; /* a JSON body past max_json_bytes, split as it arrives */
    struct pending *docs;
    size_t n, cap;
    char *arena;
    size_t arena_len, arena_cap;
    int64_t fed;
};

static tm_status store_err(struct tm_api_error *e, tm_status st, const char *err)
{
    return tm_api_errorf(e, st == TM_ENOMEM ? TM_ENOMEM : TM_EIO, NULL, -1, "%s", err);
}

static tm_status flush(struct tm_upload *u, struct tm_api_error *e)
{
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
    char where[48];
    snprintf(where, sizeof(where), "line %lld", (long long)d->line);
    return add(ctx, d->text, d->text_len, d->id, d->id_len, where, e);
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
                        enum tm_corpus_format format, const struct tm_upload_limits *limits,
                        struct tm_api_error *e)
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

/* ---------------------------------------------------------------------- */
/*
 * A JSON body larger than max_json_bytes is cut into its documents as it
 * arrives: this scanner follows strings, escapes and nesting just enough to
 * find each element of the documents array ("[...]" or {"documents": [...]})
 * and hands the element, alone, to api/corpus.h's parser, so the grammar and
 * the document rules stay api/'s. Memory: one element.
 * NEEDSWORK: belongs in api/corpus.h as a JSON mode of tm_doc_stream.
 */
struct splitter {
    int64_t pos; /* offset of the next byte */
    int depth;   /* open arrays and objects */
    int in_string, escape;
    int started, done; /* root opened; root closed */
    int root_object;
    int expect_key, in_key, key_docs, after_colon;
    char key[16];
    size_t key_len;
    int in_docs, docs_seen, docs_depth;
    int need_comma, had_comma;
    int elem_active, elem_scalar;
    int64_t elem_start, index;
    char *elem;
    size_t elem_len, elem_cap, elem_max;
};

static tm_status sp_fail(struct splitter *sp, struct tm_api_error *e, tm_status st, const char *msg)
{
    return tm_api_errorf(e, st, NULL, sp->pos, "%s (byte %lld)", msg, (long long)sp->pos);
}

static tm_status sp_emit(struct tm_upload *u, struct tm_api_error *e)
{
    struct splitter *sp = u->sp;
    char where[48];
    snprintf(where, sizeof(where), "documents[%lld]", (long long)sp->index);
    /* "[" element "]": a one-document JSON body for api/'s parser. */
    if (grow((void **)&sp->elem, &sp->elem_cap, sp->elem_len + 2, 1))
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    sp->elem[0] = '[';
    sp->elem[sp->elem_len] = ']';
    struct tm_corpus_limits cl;
    limits_of(u, &cl);
    struct tm_corpus c;
    tm_corpus_init(&c, &cl);
    tm_status st = tm_corpus_parse(&c, sp->elem, sp->elem_len + 1, TM_CORPUS_JSON, e);
    if (st) {
        /* Positions and paths as in the whole body. */
        if (e->offset >= 0)
            e->offset += sp->elem_start - 1;
        char rest[sizeof(e->field)];
        const char *f = e->field;
        if (!strncmp(f, "documents", 9))
            f += 9;
        snprintf(rest, sizeof(rest), "%s", !strncmp(f, "[0]", 3) ? f + 3 : "");
        size_t wl = strlen(where), rl = strlen(rest);
        if (wl + rl >= sizeof(e->field))
            rl = sizeof(e->field) - 1 - wl;
        memcpy(e->field, where, wl);
        memcpy(e->field + wl, rest, rl);
        e->field[wl + rl] = 0;
        e->line = e->column = 0;
    } else if (c.n_docs == 1) {
        const char *id = c.ids ? c.ids[0] : NULL;
        st = add(u, c.docs[0].text, c.docs[0].len, id, id ? strlen(id) : 0, where, e);
    }
    tm_corpus_release(&c);
    sp->elem_active = sp->elem_scalar = 0;
    sp->elem_len = 1;
    sp->index++;
    sp->need_comma = 1;
    sp->had_comma = 0;
    return st;
}

static tm_status sp_start(struct tm_upload *u, char ch, int scalar, struct tm_api_error *e)
{
    struct splitter *sp = u->sp;
    if (sp->need_comma)
        return sp_fail(sp, e, TM_EPARSE, "expected ',' or ']' between documents");
    sp->elem_active = 1;
    sp->elem_scalar = scalar;
    sp->elem_start = sp->pos;
    sp->elem_len = 1; /* room for the '[' */
    (void)ch;
    if (grow((void **)&sp->elem, &sp->elem_cap, 4096, 1))
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    return TM_OK;
}

static tm_status sp_byte(struct tm_upload *u, char ch, struct tm_api_error *e)
{
    struct splitter *sp = u->sp;
    tm_status st = TM_OK;
    int ws = ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
    /* A scalar element ends at whitespace, ',' or a closing bracket. */
    if (sp->elem_active && sp->elem_scalar && !sp->in_string &&
        (ws || ch == ',' || ch == ']' || ch == '}') && (st = sp_emit(u, e)))
        return st;
    if (sp->elem_active) {
        if (sp->elem_len + 2 > sp->elem_max)
            return tm_api_errorf(e, TM_ETOOBIG, NULL, sp->elem_start,
                                 "documents[%lld] exceeds the document size limit",
                                 (long long)sp->index);
        if (grow((void **)&sp->elem, &sp->elem_cap, sp->elem_len + 2, 1))
            return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
        sp->elem[sp->elem_len++] = ch;
    }
    if (sp->in_string) {
        if (sp->escape) {
            sp->escape = 0;
        } else if (ch == '\\') {
            sp->escape = 1;
        } else if (ch == '"') {
            sp->in_string = 0;
            if (sp->in_key) {
                sp->in_key = 0;
                if (sp->key_len != 9 || memcmp(sp->key, "documents", 9))
                    return sp_fail(sp, e, TM_EINVAL, "a large JSON body holds only \"documents\"");
                if (sp->docs_seen)
                    return sp_fail(sp, e, TM_EINVAL, "\"documents\" given twice");
                sp->key_docs = 1;
            } else if (sp->elem_active && sp->depth == sp->docs_depth) {
                return sp_emit(u, e);
            }
        } else if (sp->in_key && sp->key_len < sizeof(sp->key)) {
            sp->key[sp->key_len++] = ch;
        } else if (sp->in_key) {
            sp->key_len = sizeof(sp->key) + 1; /* too long to be "documents" */
        }
        return TM_OK;
    }
    if (ws)
        return TM_OK;
    if (sp->done)
        return sp_fail(sp, e, TM_EPARSE, "unexpected data after the JSON value");
    int at_docs = sp->in_docs && sp->depth == sp->docs_depth;
    switch (ch) {
    case '"':
        sp->in_string = 1;
        if (sp->root_object && sp->depth == 1 && sp->expect_key) {
            sp->in_key = 1;
            sp->key_len = 0;
            sp->expect_key = 0;
        } else if (at_docs && !sp->elem_active) {
            if ((st = sp_start(u, ch, 0, e)))
                return st;
            sp->elem[sp->elem_len++] = ch;
        } else if (!sp->started) {
            return sp_fail(sp, e, TM_EPARSE, "expected a JSON array or object");
        }
        return TM_OK;
    case '[':
    case '{':
        if (!sp->started) {
            sp->started = 1;
            sp->depth = 1;
            sp->root_object = ch == '{';
            sp->expect_key = sp->root_object;
            if (!sp->root_object) {
                sp->in_docs = sp->docs_seen = 1;
                sp->docs_depth = 1;
            }
            return TM_OK;
        }
        if (at_docs && !sp->elem_active) {
            if ((st = sp_start(u, ch, 0, e)))
                return st;
            sp->elem[sp->elem_len++] = ch;
        } else if (sp->root_object && sp->depth == 1 && sp->after_colon) {
            sp->after_colon = 0;
            if (ch != '[' || !sp->key_docs)
                return sp_fail(sp, e, TM_EINVAL, "\"documents\" must be an array");
            sp->in_docs = sp->docs_seen = 1;
            sp->docs_depth = 2;
        }
        sp->depth++;
        return TM_OK;
    case ']':
    case '}':
        if (!sp->started)
            return sp_fail(sp, e, TM_EPARSE, "expected a JSON array or object");
        if (at_docs && ch == ']') {
            if (sp->had_comma)
                return sp_fail(sp, e, TM_EPARSE, "a ',' before ']'");
            sp->in_docs = 0;
        }
        sp->depth--;
        if (sp->elem_active && !sp->elem_scalar && sp->depth == sp->docs_depth)
            return sp_emit(u, e);
        if (sp->depth == 0)
            sp->done = 1;
        return TM_OK;
    case ',':
        if (at_docs) {
            if (!sp->need_comma)
                return sp_fail(sp, e, TM_EPARSE, "a ',' without a document before it");
            sp->need_comma = 0;
            sp->had_comma = 1;
        } else if (sp->root_object && sp->depth == 1) {
            sp->expect_key = 1;
        }
        return TM_OK;
    case ':':
        if (sp->root_object && sp->depth == 1)
            sp->after_colon = 1;
        return TM_OK;
    default:
        if (!sp->started)
            return sp_fail(sp, e, TM_EPARSE, "expected a JSON array or object");
        if (at_docs && !sp->elem_active) {
            if ((st = sp_start(u, ch, 1, e)))
                return st;
            sp->elem[sp->elem_len++] = ch;
        } else if (sp->root_object && sp->depth == 1 && sp->after_colon) {
            return sp_fail(sp, e, TM_EINVAL, "\"documents\" must be an array");
        }
        return TM_OK;
    }
}

static tm_status sp_feed(struct tm_upload *u, const char *data, size_t len, struct tm_api_error *e)
{
    for (size_t i = 0; i < len; i++) {
        tm_status st = sp_byte(u, data[i], e);
        u->sp->pos++;
        if (st)
            return st;
    }
    return TM_OK;
}

/* From buffering to splitting: the bytes so far go through the splitter. */
static tm_status sp_begin(struct tm_upload *u, struct tm_api_error *e)
{
    u->sp = tm_calloc(1, sizeof(*u->sp));
    if (!u->sp)
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    /* Escapes can take six bytes per character. */
    u->sp->elem_max = (size_t)u->lim.max_doc_bytes * 6 + 4096;
    tm_status st = sp_feed(u, u->json ? u->json : "", u->json_len, e);
    tm_free(u->json);
    u->json = NULL;
    u->json_len = u->json_cap = 0;
    return st;
}

static tm_status sp_finish(struct tm_upload *u, struct tm_api_error *e)
{
    struct splitter *sp = u->sp;
    if (sp->elem_active && sp->elem_scalar) {
        tm_status st = sp_emit(u, e);
        if (st)
            return st;
    }
    if (!sp->done)
        return sp_fail(sp, e, TM_EPARSE, "the JSON body ends before its value does");
    if (!sp->docs_seen)
        return tm_api_errorf(e, TM_EINVAL, "documents", -1, "required");
    return TM_OK;
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
    if (u->sp)
        return sp_feed(u, data, len, e);
    if (u->json_len + len > (size_t)u->lim.max_json_bytes) {
        /* Small bodies are parsed whole (api/'s exact rules and positions);
         * past the cap the body is split into documents as it arrives. */
        tm_status st = sp_begin(u, e);
        return st ? st : sp_feed(u, data, len, e);
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
    else if (u->sp)
        st = sp_finish(u, e);
    else if (u->format == TM_CORPUS_JSON)
        st = finish_json(u, e);
    else
        st = tm_api_errorf(e, TM_EINVAL, NULL, -1, "the upload holds no file");
    if (!st)
        st = flush(u, e);
    if (st)
        return st;
    char err[TM_ERR_SIZE] = "";
    const char *id = u->append ? u->target : u->staging;
    st = u->append ? u->store->m->corpus_adopt(u->store->ctx, u->target, u->staging, err)
                   : u->store->m->corpus_commit(u->store->ctx, u->staging, err);
    if (!st)
        st = u->store->m->corpus_get(u->store->ctx, id, out, err);
    if (st == TM_ENOTFOUND)
        return tm_api_errorf(e, TM_ENOTFOUND, NULL, -1, "corpus '%s' not found", id);
    if (st)
        return store_err(e, st, err);
    u->finished = 1;
    return TM_OK;
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
    if (u->sp)
        tm_free(u->sp->elem);
    tm_free(u->sp);
    tm_free(u->docs);
    tm_free(u->arena);
    tm_free(u);
}
