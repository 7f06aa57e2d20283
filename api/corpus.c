/*
 * corpus.c - documents from bytes (see corpus.h): the in-memory corpus with
 * its block storage, the JSON readers, and the chunked JSON Lines / plain
 * lines stream that both the in-memory parser and the server's uploads use.
 */
#include "api/corpus.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "api/json_scan.h"
#include "core/alloc.h"

#define MAX_ID_BYTES 256
/* Text is stored in blocks of at least this size; a block never moves, so
 * tm_doc pointers stay valid as documents are added. */
#define BLOCK_BYTES ((size_t)1 << 20)

struct tm__corpus_block {
    struct tm__corpus_block *next;
    size_t used, size;
    char data[];
};

void tm_corpus_limits_init(struct tm_corpus_limits *limits)
{
    limits->max_documents = 10000000;
    limits->max_document_bytes = (size_t)16 << 20;
    limits->max_total_bytes = (size_t)2 << 30;
}

int tm_corpus_format_from_name(const char *name)
{
    if (!strcmp(name, "jsonl") || !strcmp(name, "ndjson"))
        return TM_CORPUS_JSONL;
    if (!strcmp(name, "json"))
        return TM_CORPUS_JSON;
    if (!strcmp(name, "lines") || !strcmp(name, "text"))
        return TM_CORPUS_LINES;
    if (!strcmp(name, "auto"))
        return TM_CORPUS_AUTO;
    return -1;
}

void tm_corpus_init(struct tm_corpus *c, const struct tm_corpus_limits *limits)
{
    memset(c, 0, sizeof(*c));
    if (limits)
        c->limits = *limits;
    else
        tm_corpus_limits_init(&c->limits);
}

void tm_corpus_release(struct tm_corpus *c)
{
    struct tm__corpus_block *b = c->blocks;
    while (b) {
        struct tm__corpus_block *next = b->next;
        tm_free(b);
        b = next;
    }
    tm_free(c->docs);
    tm_free(c->ids);
    struct tm_corpus_limits limits = c->limits;
    memset(c, 0, sizeof(*c));
    c->limits = limits;
}

/* n bytes of stable storage (n + 1 when nul is set, NUL-terminated). */
static char *corpus_store(struct tm_corpus *c, const char *bytes, size_t n, int nul)
{
    size_t need = n + (nul ? 1 : 0);
    struct tm__corpus_block *b = c->blocks;
    if (!b || b->size - b->used < need) {
        size_t size = need > BLOCK_BYTES ? need : BLOCK_BYTES;
        struct tm__corpus_block *nb = tm_malloc(sizeof(*nb) + size);
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->size = size;
        /* A big document gets a block of its own behind the current one,
         * so the current block's free space is not wasted. */
        if (b && need > BLOCK_BYTES) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            c->blocks = nb;
        }
        b = nb;
    }
    char *p = b->data + b->used;
    if (n)
        memcpy(p, bytes, n);
    if (nul)
        p[n] = '\0';
    b->used += need;
    return p;
}

tm_status tm_corpus_add(struct tm_corpus *c, const char *text, size_t len, const char *id,
                        size_t id_len, struct tm_api_error *e)
{
    char field[48];
    snprintf(field, sizeof(field), "documents[%lld]", (long long)c->n_docs);
    if (c->n_docs >= c->limits.max_documents)
        return tm_api_errorf(e, TM_ETOOBIG, field, -1, "more than %lld documents",
                             (long long)c->limits.max_documents);
    if (len > c->limits.max_document_bytes)
        return tm_api_errorf(e, TM_ETOOBIG, field, -1,
                             "document of %zu bytes exceeds the limit of %zu bytes", len,
                             c->limits.max_document_bytes);
    if ((uint64_t)c->total_bytes + len > (uint64_t)c->limits.max_total_bytes)
        return tm_api_errorf(e, TM_ETOOBIG, field, -1, "corpus exceeds the limit of %zu bytes",
                             c->limits.max_total_bytes);
    if (id && (id_len > MAX_ID_BYTES || memchr(id, '\0', id_len)))
        return tm_api_errorf(e, TM_EINVAL, field, -1, "id must be at most %d bytes and hold no NUL",
                             MAX_ID_BYTES);

    if (c->n_docs == c->cap_docs) {
        int64_t cap = c->cap_docs ? c->cap_docs * 2 : 64;
        struct tm_doc *docs = tm_reallocarray(c->docs, (size_t)cap, sizeof(*docs));
        if (!docs)
            goto nomem;
        c->docs = docs;
        if (c->ids) {
            char **ids = tm_reallocarray(c->ids, (size_t)cap, sizeof(*ids));
            if (!ids)
                goto nomem;
            c->ids = ids;
        }
        c->cap_docs = cap;
    }
    if (id && !c->ids) {
        c->ids = tm_calloc((size_t)c->cap_docs, sizeof(*c->ids));
        if (!c->ids)
            goto nomem;
    }
    char *stored_id = NULL;
    if (id) {
        stored_id = corpus_store(c, id, id_len, 1);
        if (!stored_id)
            goto nomem;
    }
    char *stored = corpus_store(c, text, len, 0);
    if (!stored)
        goto nomem;
    c->docs[c->n_docs].text = stored;
    c->docs[c->n_docs].len = len;
    if (c->ids)
        c->ids[c->n_docs] = stored_id;
    c->n_docs++;
    c->total_bytes += (int64_t)len;
    return TM_OK;
nomem:
    /* Nothing half-added: the document count did not move; storage taken
     * stays in the blocks and is freed with the corpus. */
    return tm_api_errorf(e, TM_ENOMEM, field, -1, "out of memory");
}

tm_status tm_corpus_append_take(struct tm_corpus *c, struct tm_corpus *from, struct tm_api_error *e)
{
    int64_t n = c->n_docs + from->n_docs;
    if (n > c->limits.max_documents)
        return tm_api_errorf(e, TM_ETOOBIG, NULL, -1, "more than %lld documents",
                             (long long)c->limits.max_documents);
    if ((uint64_t)c->total_bytes + (uint64_t)from->total_bytes >
        (uint64_t)c->limits.max_total_bytes)
        return tm_api_errorf(e, TM_ETOOBIG, NULL, -1, "corpus exceeds the limit of %zu bytes",
                             c->limits.max_total_bytes);
    if (n > c->cap_docs) {
        struct tm_doc *docs = tm_reallocarray(c->docs, (size_t)n, sizeof(*docs));
        if (!docs)
            goto nomem;
        c->docs = docs;
        if (c->ids) {
            char **ids = tm_reallocarray(c->ids, (size_t)n, sizeof(*ids));
            if (!ids)
                goto nomem;
            c->ids = ids;
        }
        c->cap_docs = n;
    }
    if (from->ids && !c->ids) {
        c->ids = tm_calloc((size_t)c->cap_docs, sizeof(*c->ids));
        if (!c->ids)
            goto nomem;
    }
    if (from->n_docs)
        memcpy(c->docs + c->n_docs, from->docs, (size_t)from->n_docs * sizeof(*c->docs));
    for (int64_t i = 0; c->ids && i < from->n_docs; i++)
        c->ids[c->n_docs + i] = from->ids ? from->ids[i] : NULL;
    /* from's blocks go behind c's, whose first stays the one being filled. */
    struct tm__corpus_block **tail = &c->blocks;
    while (*tail)
        tail = &(*tail)->next;
    *tail = from->blocks;
    from->blocks = NULL;
    c->n_docs = n;
    c->total_bytes += from->total_bytes;
    tm_corpus_release(from);
    return TM_OK;
nomem:
    /* c's arrays may have grown; nothing was added to them. */
    return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
}

/* ---------------------------------------------------------------------- */
/* JSON documents. */

/* The id of a document object: a string, an integer (its token), or
 * null/absent. */
static tm_status doc_id(const struct tm_json_doc *doc, const cJSON *id, const char **out,
                        size_t *len, const char *field, struct tm_api_error *e)
{
    *out = NULL;
    *len = 0;
    if (!id || cJSON_IsNull(id))
        return TM_OK;
    if (cJSON_IsString(id)) {
        if (tm_json_flags(doc, id) & TM_JSON_STR_NUL)
            return tm_api_errorf(e, TM_EINVAL, field, tm_json_offset(doc, id),
                                 "contains \\u0000, which ids cannot hold");
        *out = id->valuestring;
        *len = strlen(id->valuestring);
        return TM_OK;
    }
    if (cJSON_IsNumber(id) && !(tm_json_flags(doc, id) & TM_JSON_NUM_FRACTION)) {
        *out = tm_json_number_text(doc, id, len);
        if (*out)
            return TM_OK;
    }
    return tm_api_errorf(e, TM_EINVAL, field, tm_json_offset(doc, id),
                         "must be a string or an integer");
}

/*
 * A document object {"text": "...", "id": ...}; other fields are ignored
 * (JSON Lines exports carry labels and metadata), but "text" and "id" must
 * appear once. Fields in errors are relative to the object.
 */
static tm_status doc_from_object(const struct tm_json_doc *doc, const cJSON *obj, const char **text,
                                 size_t *text_len, const char **id, size_t *id_len,
                                 struct tm_api_error *e)
{
    const cJSON *t = NULL, *i = NULL;
    for (const cJSON *f = obj->child; f; f = f->next) {
        if (!strcmp(f->string, "text")) {
            if (t)
                return tm_api_errorf(e, TM_EINVAL, "text", tm_json_offset(doc, f),
                                     "duplicate field");
            t = f;
        } else if (!strcmp(f->string, "id")) {
            if (i)
                return tm_api_errorf(e, TM_EINVAL, "id", tm_json_offset(doc, f), "duplicate field");
            i = f;
        }
    }
    if (!t)
        return tm_api_errorf(e, TM_EINVAL, "text", tm_json_offset(doc, obj),
                             "missing (each document needs a \"text\" string)");
    if (!cJSON_IsString(t))
        return tm_api_errorf(e, TM_EINVAL, "text", tm_json_offset(doc, t), "must be a string");
    if (tm_json_flags(doc, t) & TM_JSON_STR_NUL)
        return tm_api_errorf(e, TM_EINVAL, "text", tm_json_offset(doc, t),
                             "contains \\u0000, which documents cannot hold");
    *text = t->valuestring;
    *text_len = strlen(t->valuestring);
    return doc_id(doc, i, id, id_len, "id", e);
}

tm_status tm_corpus_add_json_array(struct tm_corpus *c, const struct tm_json_doc *doc,
                                   const cJSON *array, struct tm_api_error *e)
{
    if (!cJSON_IsArray(array))
        return tm_api_errorf(e, TM_EINVAL, NULL, tm_json_offset(doc, array),
                             "must be an array of strings or of {\"id\", \"text\"} objects");
    int64_t index = 0;
    for (const cJSON *el = array->child; el; el = el->next, index++) {
        char where[48];
        snprintf(where, sizeof(where), "[%lld]", (long long)index);
        const char *text = NULL, *id = NULL;
        size_t text_len = 0, id_len = 0;
        tm_status st;
        if (cJSON_IsString(el)) {
            if (tm_json_flags(doc, el) & TM_JSON_STR_NUL)
                return tm_api_errorf(e, TM_EINVAL, where, tm_json_offset(doc, el),
                                     "contains \\u0000, which documents cannot hold");
            text = el->valuestring;
            text_len = strlen(text);
        } else if (cJSON_IsObject(el)) {
            st = doc_from_object(doc, el, &text, &text_len, &id, &id_len, e);
            if (st != TM_OK) {
                tm_api_error_prefix(e, where);
                return st;
            }
        } else {
            return tm_api_errorf(e, TM_EINVAL, where, tm_json_offset(doc, el),
                                 "must be a string or an object with a \"text\" string");
        }
        st = tm_corpus_add(c, text, text_len, id, id_len, e);
        if (st != TM_OK) {
            /* tm_corpus_add names documents[n] of the corpus; here the
             * array index is what the caller can find. */
            e->field[0] = '\0';
            tm_api_error_prefix(e, where);
            e->offset = tm_json_offset(doc, el);
            return st;
        }
    }
    return TM_OK;
}

static tm_status parse_json(struct tm_corpus *c, const char *bytes, size_t len,
                            struct tm_api_error *e)
{
    struct tm_json_doc doc;
    tm_status st = tm_json_parse(&doc, bytes, len, e);
    if (st != TM_OK)
        return st;
    const cJSON *array = doc.root;
    if (cJSON_IsObject(doc.root)) {
        array = NULL;
        for (const cJSON *f = doc.root->child; f; f = f->next) {
            if (strcmp(f->string, "documents") != 0) {
                st = tm_api_errorf(e, TM_EINVAL, f->string, tm_json_offset(&doc, f),
                                   "unknown field (expected only \"documents\")");
                goto out;
            }
            if (array) {
                st = tm_api_errorf(e, TM_EINVAL, "documents", tm_json_offset(&doc, f),
                                   "duplicate field");
                goto out;
            }
            array = f;
        }
        if (!array) {
            st = tm_api_errorf(e, TM_EINVAL, "documents", 0, "missing");
            goto out;
        }
    }
    st = tm_corpus_add_json_array(c, &doc, array, e);
    if (st != TM_OK)
        tm_api_error_prefix(e, "documents");
out:
    if (st != TM_OK)
        tm_api_error_locate(e, bytes, len);
    tm_json_release(&doc);
    return st;
}

/* ---------------------------------------------------------------------- */
/* The stream. */

struct tm_doc_stream {
    enum tm_corpus_format format;
    struct tm_corpus_limits limits;
    size_t max_line;
    tm_doc_sink sink;
    void *ctx;
    char *line; /* the partial line carried between chunks */
    size_t line_len, line_alloc;
    int64_t line_no;     /* 1-based number of the line being read */
    int64_t line_offset; /* its byte offset in the input */
    int64_t count, bytes;
    char *scratch; /* decoded text and id of the fast path */
    size_t scratch_alloc;
    struct tm__json_split *split; /* TM_CORPUS_JSON */
    tm_status failed;
    struct tm_api_error err; /* replayed after a failure */
};

/*
 * One element of a JSON stream, as "[" element "]" (see tm__json_split_new):
 * read by the whole-body JSON reader, so a document follows the same rules
 * as in a small body, and its errors are renamed to the element's place in
 * the whole body ("documents[40].text", the body's byte offset; the
 * splitter adds the line and column). Past max_documents the element is
 * still read first, as tm_corpus_add_json_array reads a document before
 * tm_corpus_add counts it, so both paths give the same error.
 */
static tm_status stream_element(void *ctx, int64_t index, const char *array, size_t len,
                                int64_t offset, struct tm_api_error *e)
{
    struct tm_doc_stream *s = ctx;
    struct tm_corpus c;
    struct tm_corpus_limits lim = s->limits;
    int over = s->count >= lim.max_documents;
    if (over)
        lim.max_documents = 0; /* tm_corpus_add refuses it, after reading it */
    tm_corpus_init(&c, &lim);
    tm_status st = tm_corpus_parse(&c, array, len, TM_CORPUS_JSON, e);
    if (st == TM_ETOOBIG && over)
        tm_api_errorf(e, TM_ETOOBIG, NULL, 1 /* the element, after the '[' */,
                      "more than %lld documents", (long long)s->limits.max_documents);
    if (st != TM_OK && e) {
        if (e->offset >= 0)
            e->offset += offset - 1; /* the '[' is not in the body */
        char where[48], rest[sizeof(e->field)];
        snprintf(where, sizeof(where), "documents[%lld]", (long long)index);
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
    } else if (st == TM_OK && c.n_docs == 1) {
        struct tm_stream_doc d = {
            .index = index, .text = c.docs[0].text, .text_len = c.docs[0].len};
        if (c.ids && c.ids[0]) {
            d.id = c.ids[0];
            d.id_len = strlen(d.id);
        }
        st = s->sink(s->ctx, &d, e);
        if (st == TM_OK)
            s->count++;
    }
    tm_corpus_release(&c);
    return st;
}

tm_status tm_doc_stream_new(struct tm_doc_stream **out, enum tm_corpus_format format,
                            const struct tm_corpus_limits *limits, tm_doc_sink sink, void *ctx)
{
    *out = NULL;
    if (format != TM_CORPUS_JSONL && format != TM_CORPUS_LINES && format != TM_CORPUS_JSON)
        return TM_EINVAL;
    struct tm_doc_stream *s = tm_calloc(1, sizeof(*s));
    if (!s)
        return TM_ENOMEM;
    s->format = format;
    if (limits)
        s->limits = *limits;
    else
        tm_corpus_limits_init(&s->limits);
    size_t doc = s->limits.max_document_bytes;
    s->max_line =
        format == TM_CORPUS_LINES ? doc : (doc > (SIZE_MAX - 4096) / 2 ? SIZE_MAX : doc * 2 + 4096);
    s->sink = sink;
    s->ctx = ctx;
    s->line_no = 1;
    tm_api_error_clear(&s->err);
    if (format == TM_CORPUS_JSON) {
        /* An element is JSON text: escapes take up to six bytes a byte. */
        size_t max_element = doc > (SIZE_MAX - 4096) / 6 ? SIZE_MAX : doc * 6 + 4096;
        if (tm__json_split_new(&s->split, "documents", "document", max_element, stream_element,
                               s) != TM_OK) {
            tm_free(s);
            return TM_ENOMEM;
        }
    }
    *out = s;
    return TM_OK;
}

void tm_doc_stream_free(struct tm_doc_stream *s)
{
    if (!s)
        return;
    tm__json_split_free(s->split);
    tm_free(s->line);
    tm_free(s->scratch);
    tm_free(s);
}

int64_t tm_doc_stream_count(const struct tm_doc_stream *s)
{
    return s->count;
}

int64_t tm_doc_stream_bytes(const struct tm_doc_stream *s)
{
    return s->bytes;
}

static tm_status stream_fail(struct tm_doc_stream *s, tm_status st, struct tm_api_error *e)
{
    s->failed = st;
    if (e)
        s->err = *e;
    return st;
}

static tm_status line_error(struct tm_doc_stream *s, tm_status st, struct tm_api_error *e,
                            const char *sub, int64_t sub_offset)
{
    char field[160];
    if (sub && *sub)
        snprintf(field, sizeof(field), "line %lld: %s", (long long)s->line_no, sub);
    else
        snprintf(field, sizeof(field), "line %lld", (long long)s->line_no);
    if (e) {
        size_t n = strlen(field);
        if (n >= sizeof(e->field))
            n = sizeof(e->field) - 1;
        memcpy(e->field, field, n);
        e->field[n] = '\0';
        e->status = st;
        e->line = s->line_no;
        e->column = sub_offset >= 0 ? sub_offset + 1 : 0;
        e->offset = sub_offset >= 0 ? s->line_offset + sub_offset : s->line_offset;
    }
    return st;
}

static int all_space(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return 0;
    return 1;
}

/*
 * The common JSON Lines record, read without a cJSON tree (see
 * tm__json_record_fast): 1 with d's text and id set, 0 to take the general
 * path (which also words any error), -1 with *st on allocation failure.
 */
static int fast_record(struct tm_doc_stream *s, const char *p, size_t n, struct tm_stream_doc *d,
                       struct tm_api_error *e, tm_status *st)
{
    static const char *const keys[] = {"text", "id"};
    struct tm_json_span sp[2];
    if (!tm__json_record_fast(p, n, keys, 2, sp))
        return 0;
    const struct tm_json_span *t = &sp[0], *id = &sp[1];
    if (!t->present || !t->is_string || t->has_nul)
        return 0;
    if (id->present && !(id->is_string && !id->has_nul) && !id->is_integer && !id->is_null)
        return 0;
    size_t need = (t->has_escapes ? t->len : 0) +
                  (id->present && id->is_string && id->has_escapes ? id->len : 0);
    if (need > s->scratch_alloc) {
        char *b = tm_realloc(s->scratch, need);
        if (!b) {
            *st = tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
            line_error(s, TM_ENOMEM, e, NULL, -1);
            return -1;
        }
        s->scratch = b;
        s->scratch_alloc = need;
    }
    size_t used = 0;
    if (t->has_escapes) {
        d->text = s->scratch;
        d->text_len = tm__json_unescape(t->p, t->len, s->scratch);
        used = d->text_len;
    } else {
        d->text = t->p;
        d->text_len = t->len;
    }
    d->id = NULL;
    d->id_len = 0;
    if (id->present && !id->is_null) {
        if (id->is_string && id->has_escapes) {
            d->id = s->scratch + used;
            d->id_len = tm__json_unescape(id->p, id->len, s->scratch + used);
        } else {
            d->id = id->p;
            d->id_len = id->len;
        }
    }
    return 1;
}

/* One complete line, without its "\n" (a trailing "\r" is dropped here). */
static tm_status stream_line(struct tm_doc_stream *s, const char *p, size_t n,
                             struct tm_api_error *e)
{
    struct tm_stream_doc d = {.index = s->count, .line = s->line_no};
    tm_status st;
    if (n && p[n - 1] == '\r')
        n--;
    if (s->format == TM_CORPUS_LINES) {
        if (n > s->limits.max_document_bytes) {
            tm_api_errorf(e, TM_ETOOBIG, NULL, -1,
                          "document of %zu bytes exceeds the limit of %zu bytes", n,
                          s->limits.max_document_bytes);
            return line_error(s, TM_ETOOBIG, e, NULL, -1);
        }
        d.text = p;
        d.text_len = n;
    } else {
        if (all_space(p, n))
            return TM_OK; /* blank lines separate nothing in JSON Lines */
        int fast = fast_record(s, p, n, &d, e, &st);
        if (fast < 0)
            return st;
        if (fast) {
            if (d.text_len > s->limits.max_document_bytes) {
                tm_api_errorf(e, TM_ETOOBIG, NULL, -1,
                              "document of %zu bytes exceeds the limit of %zu bytes", d.text_len,
                              s->limits.max_document_bytes);
                return line_error(s, TM_ETOOBIG, e, "text", -1);
            }
            goto deliver;
        }
        struct tm_json_doc doc;
        st = tm_json_parse(&doc, p, n, e);
        if (st != TM_OK) {
            int64_t off = e ? e->offset : -1;
            return line_error(s, st, e, NULL, off);
        }
        if (!cJSON_IsObject(doc.root)) {
            tm_api_errorf(e, TM_EINVAL, NULL, 0, "must be a JSON object with a \"text\" string");
            tm_json_release(&doc);
            return line_error(s, TM_EINVAL, e, NULL, 0);
        }
        st = doc_from_object(&doc, doc.root, &d.text, &d.text_len, &d.id, &d.id_len, e);
        if (st == TM_OK && d.text_len > s->limits.max_document_bytes)
            st = tm_api_errorf(e, TM_ETOOBIG, "text", -1,
                               "document of %zu bytes exceeds the limit of %zu bytes", d.text_len,
                               s->limits.max_document_bytes);
        if (st != TM_OK) {
            char sub[128];
            memcpy(sub, e ? e->field : "", e ? sizeof(sub) : 1);
            sub[sizeof(sub) - 1] = '\0';
            int64_t off = e ? e->offset : -1;
            tm_json_release(&doc);
            return line_error(s, st, e, sub, off);
        }
        if (s->count >= s->limits.max_documents) {
            tm_json_release(&doc);
            tm_api_errorf(e, TM_ETOOBIG, NULL, -1, "more than %lld documents",
                          (long long)s->limits.max_documents);
            return line_error(s, TM_ETOOBIG, e, NULL, -1);
        }
        st = s->sink(s->ctx, &d, e);
        tm_json_release(&doc);
        if (st != TM_OK)
            return st;
        s->count++;
        return TM_OK;
    }
deliver:
    if (s->count >= s->limits.max_documents) {
        tm_api_errorf(e, TM_ETOOBIG, NULL, -1, "more than %lld documents",
                      (long long)s->limits.max_documents);
        return line_error(s, TM_ETOOBIG, e, NULL, -1);
    }
    st = s->sink(s->ctx, &d, e);
    if (st != TM_OK)
        return st;
    s->count++;
    return TM_OK;
}

static tm_status line_append(struct tm_doc_stream *s, const char *p, size_t n,
                             struct tm_api_error *e)
{
    /* +1: a "\r" that the coming "\n" will drop may sit at the end. */
    if (n > s->max_line + 1 - s->line_len) {
        tm_api_errorf(e, TM_ETOOBIG, NULL, -1, "line longer than %zu bytes", s->max_line);
        return line_error(s, TM_ETOOBIG, e, NULL, -1);
    }
    if (s->line_len + n > s->line_alloc) {
        size_t alloc = s->line_alloc ? s->line_alloc : 4096;
        while (alloc < s->line_len + n)
            alloc *= 2;
        char *line = tm_realloc(s->line, alloc);
        if (!line)
            return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
        s->line = line;
        s->line_alloc = alloc;
    }
    memcpy(s->line + s->line_len, p, n);
    s->line_len += n;
    return TM_OK;
}

tm_status tm_doc_stream_feed(struct tm_doc_stream *s, const char *data, size_t len,
                             struct tm_api_error *e)
{
    tm_status st;
    if (s->failed) {
        if (e)
            *e = s->err;
        return s->failed;
    }
    tm_api_error_clear(e);
    if ((uint64_t)s->bytes + len > (uint64_t)s->limits.max_total_bytes) {
        tm_api_errorf(e, TM_ETOOBIG, NULL, -1, "input exceeds the limit of %zu bytes",
                      s->limits.max_total_bytes);
        return stream_fail(s, TM_ETOOBIG, e);
    }
    if (s->split) {
        st = tm__json_split_feed(s->split, data, len, e);
        if (st != TM_OK)
            return stream_fail(s, st, e);
        s->bytes += (int64_t)len;
        return TM_OK;
    }
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t part = nl ? (size_t)(nl - data) : len;
        if (!nl) {
            st = line_append(s, data, part, e);
            if (st != TM_OK)
                return stream_fail(s, st, e);
            s->bytes += (int64_t)part;
            break;
        }
        if (s->line_len == 0) {
            /* The whole line is in this chunk: no copy. */
            if (part > s->max_line + 1) {
                tm_api_errorf(e, TM_ETOOBIG, NULL, -1, "line longer than %zu bytes", s->max_line);
                return stream_fail(s, line_error(s, TM_ETOOBIG, e, NULL, -1), e);
            }
            st = stream_line(s, data, part, e);
        } else {
            st = line_append(s, data, part, e);
            if (st == TM_OK)
                st = stream_line(s, s->line, s->line_len, e);
        }
        if (st != TM_OK)
            return stream_fail(s, st, e);
        s->line_len = 0;
        s->bytes += (int64_t)part + 1;
        s->line_no++;
        s->line_offset = s->bytes;
        data += part + 1;
        len -= part + 1;
    }
    return TM_OK;
}

tm_status tm_doc_stream_finish(struct tm_doc_stream *s, struct tm_api_error *e)
{
    if (s->failed) {
        if (e)
            *e = s->err;
        return s->failed;
    }
    tm_api_error_clear(e);
    if (s->split) {
        tm_status st = tm__json_split_finish(s->split, e);
        return st != TM_OK ? stream_fail(s, st, e) : TM_OK;
    }
    if (s->line_len) {
        tm_status st = stream_line(s, s->line, s->line_len, e);
        if (st != TM_OK)
            return stream_fail(s, st, e);
        s->line_len = 0;
        s->line_no++;
    }
    return TM_OK;
}

/* ---------------------------------------------------------------------- */
/* Whole-buffer parsing. */

static tm_status corpus_sink(void *ctx, const struct tm_stream_doc *d, struct tm_api_error *e)
{
    struct tm_corpus *c = ctx;
    tm_status st = tm_corpus_add(c, d->text, d->text_len, d->id, d->id ? d->id_len : 0, e);
    if (st != TM_OK && e) {
        /* Name the line, as the stream's own errors do. */
        snprintf(e->field, sizeof(e->field), "line %lld", (long long)d->line);
        e->line = d->line;
        e->column = 0;
    }
    return st;
}

/*
 * Leading '{' is ambiguous: a JSON Lines file starts with an object too. It
 * is JSON Lines when its first line is a whole JSON value and more follows,
 * or when that one line is an object without "documents".
 */
static tm_status sniff(const char *bytes, size_t len, enum tm_corpus_format *format,
                       struct tm_api_error *e)
{
    size_t i = 0;
    *format = TM_CORPUS_JSONL;
    if (len >= 3 && memcmp(bytes, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len && (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\r' || bytes[i] == '\n'))
        i++;
    if (i >= len)
        return TM_OK;
    if (bytes[i] == '[')
        *format = TM_CORPUS_JSON;
    if (bytes[i] != '{')
        return TM_OK;
    const char *nl = memchr(bytes + i, '\n', len - i);
    size_t first = nl ? (size_t)(nl - bytes) : len;
    struct tm_json_doc doc;
    tm_status st = tm_json_parse(&doc, bytes, first, e);
    if (st == TM_ENOMEM)
        return st;
    if (st != TM_OK) {
        *format = TM_CORPUS_JSON; /* a multi-line (pretty-printed) object */
        return TM_OK;
    }
    int has_documents = cJSON_GetObjectItemCaseSensitive(doc.root, "documents") != NULL;
    tm_json_release(&doc);
    if (!all_space(bytes + first, len - first))
        *format = TM_CORPUS_JSONL;
    else
        *format = has_documents ? TM_CORPUS_JSON : TM_CORPUS_JSONL;
    return TM_OK;
}

tm_status tm_corpus_parse(struct tm_corpus *c, const char *bytes, size_t len,
                          enum tm_corpus_format format, struct tm_api_error *e)
{
    tm_api_error_clear(e);
    if (len > c->limits.max_total_bytes)
        return tm_api_errorf(e, TM_ETOOBIG, NULL, -1,
                             "input of %zu bytes exceeds the limit of %zu bytes", len,
                             c->limits.max_total_bytes);
    if (format == TM_CORPUS_AUTO) {
        tm_status st = sniff(bytes, len, &format, e);
        if (st != TM_OK)
            return st;
        tm_api_error_clear(e);
    }
    if (format == TM_CORPUS_JSON)
        return parse_json(c, bytes, len, e);
    if (format != TM_CORPUS_JSONL && format != TM_CORPUS_LINES)
        return tm_api_errorf(e, TM_EINVAL, NULL, -1, "unknown corpus format");

    struct tm_doc_stream *s;
    tm_status st = tm_doc_stream_new(&s, format, &c->limits, corpus_sink, c);
    if (st != TM_OK)
        return tm_api_errorf(e, st, NULL, -1, "%s", tm_strerror(st));
    size_t skip = 0;
    if (len >= 3 && memcmp(bytes, "\xEF\xBB\xBF", 3) == 0)
        skip = 3;
    st = tm_doc_stream_feed(s, bytes + skip, len - skip, e);
    if (st == TM_OK)
        st = tm_doc_stream_finish(s, e);
    tm_doc_stream_free(s);
    if (st != TM_OK && e && e->offset >= 0)
        e->offset += (int64_t)skip;
    return st;
}
