/* auth_body.c - the sign-in routes' bodies (auth_body.h). */
#include "api/auth_body.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json.h"

/* Fills e for item (NULL: no position) of doc and returns st. */
static tm_status fail(const struct tm_json_doc *doc, struct tm_api_error *e, tm_status st,
                      const char *field, const cJSON *item, const char *msg)
{
    tm_api_errorf(e, st, field, item ? tm_json_offset(doc, item) : -1, "%s", msg);
    if (e)
        tm_api_error_locate(e, doc->text, doc->len);
    return st;
}

/* The one member of doc's root named name into *out (NULL when absent);
 * any other member, a duplicate or a root that is no object is an error. */
static tm_status only_member(const struct tm_json_doc *doc, const char *name, const cJSON **out,
                             struct tm_api_error *e)
{
    *out = NULL;
    if (!cJSON_IsObject(doc->root))
        return fail(doc, e, TM_EINVAL, NULL, doc->root, "the body must be a JSON object");
    for (const cJSON *m = doc->root->child; m; m = m->next) {
        if (strcmp(m->string, name))
            return fail(doc, e, TM_EINVAL, m->string, m, "unknown field");
        if (*out)
            return fail(doc, e, TM_EINVAL, m->string, m, "duplicate field");
        *out = m;
    }
    return TM_OK;
}

tm_status tm_session_body_parse(const char *text, size_t len, char *key, size_t size,
                                struct tm_api_error *e)
{
    struct tm_json_doc doc;
    const cJSON *k;
    tm_status st = tm_json_parse(&doc, text, len, e);
    if (!st)
        st = only_member(&doc, "key", &k, e);
    if (!st && !k)
        st = fail(&doc, e, TM_EINVAL, "key", NULL,
                  "required: the API key to sign in with (or send it as Authorization: Bearer)");
    if (!st && (!cJSON_IsString(k) || (tm_json_flags(&doc, k) & TM_JSON_STR_NUL) ||
                strlen(k->valuestring) >= size))
        st = fail(&doc, e, TM_EINVAL, "key", k, "must be an API key (tpk_...), as a string");
    if (!st)
        snprintf(key, size, "%s", k->valuestring);
    tm_json_release(&doc);
    return st;
}

tm_status tm_links_body_parse(const char *text, size_t len, int64_t def, int64_t min, int64_t max,
                              int64_t *expires_in, struct tm_api_error *e)
{
    *expires_in = def;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (i == len)
        return TM_OK;
    struct tm_json_doc doc;
    const cJSON *it;
    char want[96];
    snprintf(want, sizeof(want), "must be an integer in [%" PRId64 ", %" PRId64 "] (seconds)", min,
             max);
    tm_status st = tm_json_parse(&doc, text, len, e);
    if (!st)
        st = only_member(&doc, "expires_in", &it, e);
    /* An integer as JSON Schema has it: any number of integral value, so
     * 600.0 and 6e2 too. The bounds are far inside a double's exact range. */
    if (!st && it) {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!cJSON_IsNumber(it) || v != floor(v) || v < (double)min || v > (double)max)
            st = fail(&doc, e, TM_ERANGE, "expires_in", it, want);
        else
            *expires_in = (int64_t)v;
    }
    tm_json_release(&doc);
    return st;
}
