/* test_http_session.c - what a browser app uses, against a real `topicd
 * serve`: CORS (--cors-origin: preflights answered without a key for
 * listed origins, credentials never with "*", unlisted origins served as
 * before without CORS headers), the session cookie (sign in, use it on a
 * keyed route, the CSRF check on unsafe methods, sign out, a tampered
 * cookie, revoking its key ends it, on SQLite across a restart and on
 * PostgreSQL across two replicas), and signed links (a link works without
 * a key for its one path; tampered, expired, moved to another path or to
 * another tenant's job, it is refused). */
#include <stdio.h>

#include "core/clock.h"
#include "http_helpers.h"
#include "tmpstore.h"

/* A response with all its header lines. */
struct sresp {
    long status;
    char *body;
    size_t len;
    char headers[4096];
    size_t hlen;
};

static size_t s_body(char *p, size_t size, size_t n, void *ud)
{
    struct sresp *r = ud;
    size_t add = size * n;
    char *nb = realloc(r->body, r->len + add + 1);
    if (!nb)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, add);
    r->len += add;
    r->body[r->len] = 0;
    return add;
}

static size_t s_header(char *p, size_t size, size_t n, void *ud)
{
    struct sresp *r = ud;
    size_t add = size * n;
    if (r->hlen + add < sizeof(r->headers)) {
        memcpy(r->headers + r->hlen, p, add);
        r->hlen += add;
        r->headers[r->hlen] = 0;
    }
    return add;
}

static void sresp_free(struct sresp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* method path with the NULL-terminated headers (may be NULL) and body
 * (NULL: none; content_type then too); the status. r (may be NULL) gets
 * the response, freed with sresp_free. */
static long sreq(const struct th_server *s, const char *method, const char *path,
                 const char *const *headers, const char *content_type, const char *body,
                 struct sresp *r)
{
    struct sresp local = {0};
    struct sresp *out = r ? r : &local;
    memset(out, 0, sizeof(*out));
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    char url[1024], ct[200];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    if (content_type) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        h = curl_slist_append(h, ct);
    }
    for (int i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    long st = out->status;
    if (!r)
        sresp_free(&local);
    return st;
}

/* The value of header name in r into out ("" when absent); out. */
static const char *hdr(const struct sresp *r, const char *name, char *out, size_t size)
{
    out[0] = 0;
    size_t k = strlen(name);
    for (const char *l = r->headers; *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        if (n > k && !strncasecmp(l, name, k) && l[k] == ':') {
            const char *v = l + k + 1;
            while (*v == ' ')
                v++;
            size_t len = (size_t)(l + n - v);
            while (len && (v[len - 1] == '\r' || v[len - 1] == '\n'))
                len--;
            if (len >= size)
                len = size - 1;
            memcpy(out, v, len);
            out[len] = 0;
            return out;
        }
        l += n + (e ? 1 : 0);
    }
    return out;
}

/* 1 when r has header name. */
static int has_hdr(const struct sresp *r, const char *name)
{
    char v[8];
    size_t k = strlen(name);
    hdr(r, name, v, sizeof(v));
    if (v[0])
        return 1;
    /* An empty value still counts. */
    for (const char *l = r->headers; (l = strchr(l, '\n')); l++)
        if (!strncasecmp(l + 1, name, k) && l[1 + k] == ':')
            return 1;
    return 0;
}

/* The error code of r's JSON body into out. */
static const char *ecode(const struct sresp *r, char *out, size_t size)
{
    out[0] = 0;
    cJSON *j = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const char *c = j ? th_str(j, "error.code") : NULL;
    snprintf(out, size, "%s", c ? c : "(none)");
    cJSON_Delete(j);
    return out;
}

/* `topicd keys ARGS` on store (a conninfo) or else on dir: its first line
 * of output into out (may be NULL); the exit status. */
static int keys(const char *dir, const char *store, const char *args, char *out, size_t size)
{
    char cmd[2000];
    if (store)
        snprintf(cmd, sizeof(cmd), "'%s/topicd' keys %s --store '%s' 2>/dev/null", tm_test_bindir(),
                 args, store);
    else
        snprintf(cmd, sizeof(cmd), "'%s/topicd' keys %s --data-dir '%s' 2>/dev/null",
                 tm_test_bindir(), args, dir);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512] = "";
    if (!fgets(line, sizeof(line), p))
        line[0] = 0;
    line[strcspn(line, "\n")] = 0;
    if (out)
        snprintf(out, size, "%s", line);
    while (fgets(line, sizeof(line), p))
        ;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* "topicd keys revoke" of key's id. */
static int revoke_key(const char *dir, const char *store, const char *key)
{
    char args[64];
    snprintf(args, sizeof(args), "revoke %.12s", key + 4);
    return keys(dir, store, args, NULL, 0);
}

static int file_has_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

#define APP "https://app.example.com"

TM_TEST(http_cors)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char key[128], auth[200], v[256], code[64];
    REQUIRE(th_tmpdir(&s) == 0);
    REQUIRE(keys(s.dir, NULL, "create --tenant acme", key, sizeof(key)) == 0);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    /* A wildcard, a path, no scheme: refused at start, saying why. */
    CHECK(th_start(&s, "--cors-origin", "*", NULL) != 0);
    CHECK(file_has_text(s.log, "wildcard cannot go with credentials"));
    CHECK(th_start(&s, "--cors-origin", APP ",https://x.example/app", NULL) != 0);
    CHECK(file_has_text(s.log, "no path"));
    CHECK(th_start(&s, "--cors-origin", "app.example.com", NULL) != 0);
    if (th_start(&s, "--cors-origin", APP ", http://localhost:3000", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    struct sresp r;
    /* A preflight from a listed origin: no key, the route's methods. */
    const char *pre[] = {"Origin: " APP, "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: authorization, content-type", NULL};
    CHECK_INT_EQ(sreq(&s, "OPTIONS", "/v1/jobs", pre, NULL, NULL, &r), 204);
    CHECK_STR_EQ(hdr(&r, "Access-Control-Allow-Origin", v, sizeof(v)), APP);
    CHECK_STR_EQ(hdr(&r, "Access-Control-Allow-Credentials", v, sizeof(v)), "true");
    CHECK_STR_EQ(hdr(&r, "Access-Control-Allow-Methods", v, sizeof(v)), "GET, HEAD, POST");
    hdr(&r, "Access-Control-Allow-Headers", v, sizeof(v));
    CHECK(strstr(v, "Authorization") && strstr(v, "Content-Type") && strstr(v, "Idempotency-Key"));
    CHECK(atoi(hdr(&r, "Access-Control-Max-Age", v, sizeof(v))) > 0);
    CHECK_STR_EQ(hdr(&r, "Vary", v, sizeof(v)), "Origin");
    sresp_free(&r);
    const char *pre2[] = {"Origin: http://localhost:3000", "Access-Control-Request-Method: GET",
                          NULL};
    CHECK_INT_EQ(sreq(&s, "OPTIONS", "/v1/jobs/j_x/result", pre2, NULL, NULL, &r), 204);
    CHECK_STR_EQ(hdr(&r, "Access-Control-Allow-Origin", v, sizeof(v)), "http://localhost:3000");
    CHECK_STR_EQ(hdr(&r, "Access-Control-Allow-Methods", v, sizeof(v)), "GET, HEAD");
    sresp_free(&r);
    CHECK_INT_EQ(sreq(&s, "OPTIONS", "/v1/session", pre2, NULL, NULL, &r), 204);
    CHECK_STR_EQ(hdr(&r, "Access-Control-Allow-Methods", v, sizeof(v)), "GET, HEAD, POST, DELETE");
    sresp_free(&r);
    /* An unlisted origin (or a prefix, or another scheme) gets no CORS
     * headers, and OPTIONS is served as before: a key, then 405. */
    const char *const others[] = {"https://evil.example.com", "https://app.example.com.evil.net",
                                  "http://app.example.com", "null"};
    for (int i = 0; i < 4; i++) {
        char o[120];
        snprintf(o, sizeof(o), "Origin: %s", others[i]);
        const char *bad[] = {o, "Access-Control-Request-Method: POST", NULL};
        CHECK_INT_EQ(sreq(&s, "OPTIONS", "/v1/jobs", bad, NULL, NULL, &r), 401);
        CHECK(!has_hdr(&r, "Access-Control-Allow-Origin"));
        CHECK(!has_hdr(&r, "Access-Control-Allow-Credentials"));
        CHECK_STR_EQ(hdr(&r, "Vary", v, sizeof(v)), "Origin");
        sresp_free(&r);
        const char *get[] = {o, auth, NULL};
        CHECK_INT_EQ(sreq(&s, "GET", "/v1/jobs", get, NULL, NULL, &r), 200);
        CHECK(!has_hdr(&r, "Access-Control-Allow-Origin"));
        sresp_free(&r);
    }
    const char *plain[] = {auth, NULL};
    CHECK_INT_EQ(sreq(&s, "OPTIONS", "/v1/jobs", plain, NULL, NULL, &r), 405);
    CHECK_STR_EQ(hdr(&r, "Allow", v, sizeof(v)), "GET, HEAD, POST");
    sresp_free(&r);
    /* Simple requests from a listed origin: the origin echoed (never *),
     * credentials allowed, the headers a client reads exposed; on errors
     * too, so that the page can read them. */
    const char *get[] = {"Origin: " APP, auth, NULL};
    CHECK_INT_EQ(sreq(&s, "GET", "/v1/jobs", get, NULL, NULL, &r), 200);
    CHECK_STR_EQ(hdr(&r, "Access-Control-Allow-Origin", v, sizeof(v)), APP);
    CHECK_STR_EQ(hdr(&r, "Access-Control-Allow-Credentials", v, sizeof(v)), "true");
    hdr(&r, "Access-Control-Expose-Headers", v, sizeof(v));
    CHECK(strstr(v, "Location") && strstr(v, "Retry-After") && strstr(v, "X-Request-Id"));
    CHECK(!has_hdr(&r, "Access-Control-Allow-Methods"));
    sresp_free(&r);
    const char *nokey[] = {"Origin: " APP, NULL};
    CHECK_INT_EQ(sreq(&s, "GET", "/v1/corpora", nokey, NULL, NULL, &r), 401);
    CHECK_STR_EQ(hdr(&r, "Access-Control-Allow-Origin", v, sizeof(v)), APP);
    CHECK_STR_EQ(ecode(&r, code, sizeof(code)), "unauthorized");
    sresp_free(&r);
    CHECK_INT_EQ(th_stop(&s), 0);
    /* Without --cors-origin: no CORS headers at all, OPTIONS as before. */
    if (th_start(&s, NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not restart");
        goto out;
    }
    CHECK_INT_EQ(sreq(&s, "OPTIONS", "/v1/jobs", pre, NULL, NULL, &r), 401);
    CHECK(!has_hdr(&r, "Access-Control-Allow-Origin") && !has_hdr(&r, "Vary"));
    sresp_free(&r);
    CHECK_INT_EQ(sreq(&s, "GET", "/v1/jobs", get, NULL, NULL, &r), 200);
    CHECK(!has_hdr(&r, "Access-Control-Allow-Origin") && !has_hdr(&r, "Vary"));
    sresp_free(&r);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

/* The cookie's value from a Set-Cookie into out: "name=value". */
static void cookie_of(const struct sresp *r, char *out, size_t size)
{
    char v[400];
    hdr(r, "Set-Cookie", v, sizeof(v));
    v[strcspn(v, ";")] = 0;
    snprintf(out, size, "Cookie: %s", v);
}

#define DOCS "cats and dogs\ndogs chase cats\nstocks and bonds\nbond markets fall\n"

/* Sign in, the cookie on keyed routes, CSRF, sign out, a tampered cookie,
 * and the end of a session whose key was revoked (SQLite: after a
 * restart, which also shows the store's secret outlives the process). */
TM_TEST(http_session_cookie)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char key[128], other[128], auth[200], v[512], cookie[512], bad[512], body[300], code[64];
    REQUIRE(th_tmpdir(&s) == 0);
    REQUIRE(keys(s.dir, NULL, "create --tenant acme", key, sizeof(key)) == 0);
    REQUIRE(keys(s.dir, NULL, "create --tenant beta", other, sizeof(other)) == 0);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    if (th_start(&s, "--cors-origin", APP, NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    struct sresp r;
    /* Sign in with the key in Authorization. */
    const char *in[] = {auth, NULL};
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", in, NULL, NULL, &r), 200);
    hdr(&r, "Set-Cookie", v, sizeof(v));
    CHECK(!strncmp(v, "topicd_session=v1.", 18));
    CHECK(strstr(v, "; HttpOnly") && strstr(v, "; SameSite=Strict") && strstr(v, "; Path=/"));
    CHECK(strstr(v, "; Max-Age=43200") != NULL);
    CHECK(strstr(v, "Secure") == NULL);
    CHECK(!strstr(v, key + 4)); /* never the key */
    CHECK(r.body && strstr(r.body, "\"tenant\":\"acme\""));
    cookie_of(&r, cookie, sizeof(cookie));
    sresp_free(&r);
    /* Behind TLS (the load balancer says so): Secure. */
    const char *tls[] = {auth, "X-Forwarded-Proto: https", NULL};
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", tls, NULL, NULL, &r), 200);
    CHECK(strstr(hdr(&r, "Set-Cookie", v, sizeof(v)), "; Secure") != NULL);
    sresp_free(&r);
    /* Or in a JSON body; a wrong key or body is refused. */
    snprintf(body, sizeof(body), "{\"key\":\"%s\"}", key);
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", NULL, "application/json", body, &r), 200);
    CHECK(has_hdr(&r, "Set-Cookie"));
    sresp_free(&r);
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", NULL, "application/json",
                      "{\"key\":\"tpk_000000000000_00\"}", &r),
                 401);
    CHECK(!has_hdr(&r, "Set-Cookie"));
    sresp_free(&r);
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", NULL, "application/json", "{\"key\":", NULL), 400);
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", NULL, "application/json", "{\"kee\":\"x\"}", &r),
                 422);
    CHECK(r.body && strstr(r.body, "\"field\":\"kee\""));
    sresp_free(&r);
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", NULL, "text/plain", key, NULL), 415);
    /* A body sent with the header must be valid too. */
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", in, "application/json", "{\"key\":5}", NULL), 422);
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", in, "application/json", "{}", NULL), 422);
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", in, "application/json", body, NULL), 200);
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", NULL, NULL, NULL, &r), 401);
    CHECK_STR_EQ(hdr(&r, "WWW-Authenticate", v, sizeof(v)), "Bearer realm=\"topicd\"");
    sresp_free(&r);
    const char *evil_in[] = {auth, "Origin: https://evil.example.com", NULL};
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/session", evil_in, NULL, NULL, &r), 403);
    CHECK(!has_hdr(&r, "Set-Cookie"));
    sresp_free(&r);

    /* The cookie on keyed routes, as the key. */
    const char *ck[] = {cookie, NULL};
    CHECK_INT_EQ(sreq(&s, "GET", "/v1/corpora", ck, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(sreq(&s, "GET", "/v1/session", ck, NULL, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, "\"tenant\":\"acme\"") && strstr(r.body, "\"via\":\"cookie\""));
    sresp_free(&r);
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/corpora", ck, "text/plain", DOCS, NULL), 201);
    /* CSRF: a page of another origin cannot change anything with it. */
    const char *evil[] = {cookie, "Origin: https://evil.example.com", NULL};
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/corpora", evil, "text/plain", DOCS, &r), 403);
    CHECK_STR_EQ(ecode(&r, code, sizeof(code)), "cross_origin_refused");
    sresp_free(&r);
    CHECK_INT_EQ(sreq(&s, "DELETE", "/v1/corpora/c_x", evil, NULL, NULL, NULL), 403);
    CHECK_INT_EQ(sreq(&s, "GET", "/v1/corpora", evil, NULL, NULL, NULL), 200);
    char own[100];
    snprintf(own, sizeof(own), "Origin: http://127.0.0.1:%d", s.port);
    const char *same[] = {cookie, own, NULL};
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/corpora", same, "text/plain", DOCS, NULL), 201);
    const char *listed[] = {cookie, "Origin: " APP, NULL};
    CHECK_INT_EQ(sreq(&s, "POST", "/v1/corpora", listed, "text/plain", DOCS, NULL), 201);
    /* A key in Authorization wins over the cookie, and needs no Origin check. */
    char auth2[200];
    snprintf(auth2, sizeof(auth2), "Authorization: Bearer %s", other);
    const char *both[] = {cookie, auth2, "Origin: https://evil.example.com", NULL};
    CHECK_INT_EQ(sreq(&s, "GET", "/v1/session", both, NULL, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, "\"tenant\":\"beta\"") && strstr(r.body, "\"via\":\"key\""));
    sresp_free(&r);
    /* Tampered: refused, and the browser told to drop it. */
    snprintf(bad, sizeof(bad), "%s", cookie);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
    const char *bk[] = {bad, NULL};
    CHECK_INT_EQ(sreq(&s, "GET", "/v1/corpora", bk, NULL, NULL, &r), 401);
    CHECK(strstr(hdr(&r, "Set-Cookie", v, sizeof(v)), "Max-Age=0") != NULL);
    CHECK_STR_EQ(hdr(&r, "WWW-Authenticate", v, sizeof(v)), "Bearer realm=\"topicd\"");
    sresp_free(&r);
    /* Sign out: the cookie is cleared. */
    CHECK_INT_EQ(sreq(&s, "DELETE", "/v1/session", ck, NULL, NULL, &r), 204);
    hdr(&r, "Set-Cookie", v, sizeof(v));
    CHECK(!strncmp(v, "topicd_session=;", 16) && strstr(v, "Max-Age=0"));
    sresp_free(&r);

    /* The secret is the store's: the cookie outlives a restart. */
    CHECK_INT_EQ(th_stop(&s), 0);
    if (th_start(&s, NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not restart");
        goto out;
    }
    CHECK_INT_EQ(sreq(&s, "GET", "/v1/corpora", ck, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(th_stop(&s), 0);
    /* Revoked (one process has a SQLite store: revoked while stopped). */
    CHECK_INT_EQ(revoke_key(s.dir, NULL, key), 0);
    if (th_start(&s, NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not restart");
        goto out;
    }
    CHECK_INT_EQ(sreq(&s, "GET", "/v1/corpora", ck, NULL, NULL, &r), 401);
    CHECK(r.body && strstr(r.body, "revoked"));
    sresp_free(&r);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

/* Two replicas on one PostgreSQL store: a cookie from one works on the
 * other (one secret, made once), and revoking its key while both run ends
 * it on both once the keys cache's TTL has passed. */
TM_TEST(http_session_pg_replicas)
{
    if (tm_tmpstore_pg_skip()) {
        tm_test_skip(t, tm_tmpstore_pg_skip());
        return;
    }
    struct th_server a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    char schema[40] = "", conninfo[1024], key[128], auth[200], cookie[512];
    REQUIRE(tm_test_pg_schema_new(schema, conninfo, sizeof(conninfo)) == 0);
    setenv("TOPICD_STORE", conninfo, 1);
    if (th_tmpdir(&a) || th_tmpdir(&b) ||
        keys(a.dir, conninfo, "create --tenant acme", key, sizeof(key)) != 0) {
        tm_test_fail(t, __FILE__, __LINE__, "could not make a key");
        goto out;
    }
    /* A second key: revoking the only one would turn --auth auto off. */
    if (keys(a.dir, conninfo, "create --tenant beta", NULL, 0) != 0) {
        tm_test_fail(t, __FILE__, __LINE__, "could not make a key");
        goto out;
    }
    if (th_start(&a, NULL) || th_start(&b, NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "replicas did not start");
        goto out;
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    struct sresp r;
    const char *in[] = {auth, NULL};
    CHECK_INT_EQ(sreq(&a, "POST", "/v1/session", in, NULL, NULL, &r), 200);
    cookie_of(&r, cookie, sizeof(cookie));
    sresp_free(&r);
    const char *ck[] = {cookie, NULL};
    CHECK_INT_EQ(sreq(&a, "GET", "/v1/jobs", ck, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(sreq(&b, "GET", "/v1/jobs", ck, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(revoke_key(a.dir, conninfo, key), 0);
    /* TM_KEYS_TTL_S (5 s) and a margin. */
    double end = th_now() + 5.0 + 3.0;
    long sa = 0, sb = 0;
    while (th_now() < end && (sa != 401 || sb != 401)) {
        sa = sreq(&a, "GET", "/v1/jobs", ck, NULL, NULL, NULL);
        sb = sreq(&b, "GET", "/v1/jobs", ck, NULL, NULL, NULL);
        th_sleep_ms(200);
    }
    CHECK_INT_EQ(sa, 401);
    CHECK_INT_EQ(sb, 401);
    CHECK_INT_EQ(th_stop(&a), 0);
    CHECK_INT_EQ(th_stop(&b), 0);
out:
    unsetenv("TOPICD_STORE");
    th_cleanup(&a);
    th_cleanup(&b);
    if (schema[0])
        tm_test_pg_schema_drop(schema);
}

/* The signed link of name in r's links into out (a path with its query). */
static int link_of(const struct sresp *r, const char *name, char *out, size_t size)
{
    out[0] = 0;
    cJSON *j = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const cJSON *l = j ? cJSON_GetObjectItemCaseSensitive(j, "links") : NULL;
    const cJSON *v = l ? cJSON_GetObjectItemCaseSensitive(l, name) : NULL;
    if (cJSON_IsString(v))
        snprintf(out, size, "%s", v->valuestring);
    cJSON_Delete(j);
    return out[0] ? 0 : -1;
}

/* A finished job of tenant key's: its id into jid. */
static int job_of(struct tm_test_ctx *t, const struct th_server *s, const char *key, char *jid)
{
    char auth[200], cid[40], spec[200], state[32] = "";
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    const char *h[] = {auth, NULL};
    if (th_post_for_id(s, "/v1/corpora", "text/plain", DOCS, strlen(DOCS), h, cid) != 201)
        return -1;
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"method\":\"nmf\",\"n_topics\":2}}", cid);
    if (th_post_for_id(s, "/v1/jobs", "application/json", spec, strlen(spec), h, jid) != 202)
        return -1;
    char path[100];
    snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
    for (double end = th_now() + 60; th_now() < end && strcmp(state, "succeeded");) {
        struct sresp r;
        sreq(s, "GET", path, h, NULL, NULL, &r);
        cJSON *j = r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;
        const char *st = j ? th_str(j, "state") : NULL;
        snprintf(state, sizeof(state), "%s", st ? st : "");
        cJSON_Delete(j);
        sresp_free(&r);
        th_sleep_ms(20);
    }
    CHECK_STR_EQ(state, "succeeded");
    return strcmp(state, "succeeded") ? -1 : 0;
}

TM_TEST(http_signed_links)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char a[128], b[128], auth_a[200], auth_b[200], ja[40], jb[40], path[600], moved[600], v[300];
    char code[64];
    REQUIRE(th_tmpdir(&s) == 0);
    REQUIRE(keys(s.dir, NULL, "create --tenant acme", a, sizeof(a)) == 0);
    REQUIRE(keys(s.dir, NULL, "create --tenant beta", b, sizeof(b)) == 0);
    snprintf(auth_a, sizeof(auth_a), "Authorization: Bearer %s", a);
    snprintf(auth_b, sizeof(auth_b), "Authorization: Bearer %s", b);
    if (th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    if (job_of(t, &s, a, ja) || job_of(t, &s, b, jb))
        goto out;
    struct sresp r, lr;
    const char *ha[] = {auth_a, NULL}, *hb[] = {auth_b, NULL};
    snprintf(path, sizeof(path), "/v1/jobs/%s/links", ja);
    /* Another tenant cannot read the job's files. */
    snprintf(moved, sizeof(moved), "/v1/jobs/%s/document-topics.csv", ja);
    CHECK_INT_EQ(sreq(&s, "GET", moved, hb, NULL, NULL, NULL), 404);
    CHECK_INT_EQ(sreq(&s, "GET", moved, NULL, NULL, NULL, NULL), 401);
    CHECK_INT_EQ(sreq(&s, "GET", moved, ha, NULL, NULL, NULL), 200);
    /* Another tenant cannot make links to the job. */
    CHECK_INT_EQ(sreq(&s, "POST", path, hb, NULL, NULL, NULL), 404);
    CHECK_INT_EQ(sreq(&s, "POST", path, NULL, NULL, NULL, NULL), 401);
    CHECK_INT_EQ(sreq(&s, "POST", path, ha, NULL, NULL, &lr), 200);
    cJSON *j = lr.body ? cJSON_ParseWithLength(lr.body, lr.len) : NULL;
    double exp = j ? th_num(j, "expires_at") : -1;
    cJSON_Delete(j);
    /* Default: an hour. */
    CHECK(exp > tm_clock_unix() + 3500 && exp < tm_clock_unix() + 3700);
    /* Each link works without a key, for its one path. */
    static const struct {
        const char *name, *has;
    } linked[] = {{"result", "\"topics\""},
                  {"document_topics", "\"weights\""},
                  {"job", "\"state\""},
                  {"plot_topics", "<svg xmlns="},
                  {"report", "<!DOCTYPE html>"},
                  {"topic_terms_csv", "topic,term,weight\r\n"},
                  {"document_topics_csv", "document_id,topic,weight\r\n"}};
    for (size_t i = 0; i < sizeof(linked) / sizeof(linked[0]); i++) {
        REQUIRE(link_of(&lr, linked[i].name, v, sizeof(v)) == 0);
        CHECK(strstr(v, ja) != NULL && strstr(v, "?expires=") && strstr(v, "&sig="));
        CHECK_INT_EQ(sreq(&s, "GET", v, NULL, NULL, NULL, &r), 200);
        CHECK(r.body && strstr(r.body, linked[i].has));
        sresp_free(&r);
        CHECK_INT_EQ(sreq(&s, "HEAD", v, NULL, NULL, NULL, NULL), 200);
    }
    char res[300], dt[400];
    link_of(&lr, "result", res, sizeof(res));
    link_of(&lr, "document_topics", dt, sizeof(dt));
    sresp_free(&lr);
    /* Paging: the signature is the path's, not the page's. */
    strcat(dt, "&offset=1&limit=2");
    CHECK_INT_EQ(sreq(&s, "GET", dt, NULL, NULL, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, "\"offset\":1"));
    sresp_free(&r);
    /* Tampered signature, expiry; the link moved to another route of the
     * job, or to the other tenant's job. */
    snprintf(moved, sizeof(moved), "%s", res);
    moved[strlen(moved) - 1] = moved[strlen(moved) - 1] == '0' ? '1' : '0';
    CHECK_INT_EQ(sreq(&s, "GET", moved, NULL, NULL, NULL, &r), 403);
    CHECK_STR_EQ(ecode(&r, code, sizeof(code)), "link_invalid");
    sresp_free(&r);
    char *q = strstr(res, "?expires=");
    REQUIRE(q != NULL);
    snprintf(moved, sizeof(moved), "/v1/jobs/%s/result?expires=%lld%s", ja, (long long)exp + 10,
             strstr(q, "&sig="));
    CHECK_INT_EQ(sreq(&s, "GET", moved, NULL, NULL, NULL, NULL), 403);
    snprintf(moved, sizeof(moved), "/v1/jobs/%s/document-topics%s", ja, q);
    CHECK_INT_EQ(sreq(&s, "GET", moved, NULL, NULL, NULL, NULL), 403);
    snprintf(moved, sizeof(moved), "/v1/jobs/%s/result%s", jb, q);
    CHECK_INT_EQ(sreq(&s, "GET", moved, NULL, NULL, NULL, &r), 403);
    CHECK_STR_EQ(ecode(&r, code, sizeof(code)), "link_invalid");
    sresp_free(&r);
    snprintf(moved, sizeof(moved), "/v1/jobs/j_doesnotexist/result%s", q);
    CHECK_INT_EQ(sreq(&s, "GET", moved, NULL, NULL, NULL, NULL), 403);
    /* A link reads; it does not delete or cancel. */
    snprintf(moved, sizeof(moved), "/v1/jobs/%s%s", ja, q);
    CHECK_INT_EQ(sreq(&s, "DELETE", moved, NULL, NULL, NULL, NULL), 401);
    /* No signature: a key is needed, as ever. */
    snprintf(moved, sizeof(moved), "/v1/jobs/%s/result?expires=%lld", ja, (long long)exp);
    CHECK_INT_EQ(sreq(&s, "GET", moved, NULL, NULL, NULL, NULL), 401);
    /* The body: expires_in in [1, 86400]. */
    CHECK_INT_EQ(sreq(&s, "POST", path, ha, "application/json", "{\"expires_in\":0}", NULL), 422);
    CHECK_INT_EQ(sreq(&s, "POST", path, ha, "application/json", "{\"expires_in\":86401}", NULL),
                 422);
    CHECK_INT_EQ(sreq(&s, "POST", path, ha, "application/json", "{\"expires_in\":1.5}", NULL), 422);
    CHECK_INT_EQ(sreq(&s, "POST", path, ha, "application/json", "{\"ttl\":5}", NULL), 422);
    CHECK_INT_EQ(sreq(&s, "POST", path, ha, "application/json", "{", NULL), 400);
    CHECK_INT_EQ(sreq(&s, "POST", path, ha, "text/plain", "5", NULL), 415);
    CHECK_INT_EQ(sreq(&s, "POST", path, ha, "application/json", "{\"expires_in\":600.0}", NULL),
                 200);
    /* Expired. */
    CHECK_INT_EQ(sreq(&s, "POST", path, ha, "application/json", "{\"expires_in\":1}", &lr), 200);
    link_of(&lr, "result", res, sizeof(res));
    sresp_free(&lr);
    CHECK_INT_EQ(sreq(&s, "GET", res, NULL, NULL, NULL, NULL), 200);
    th_sleep_ms(2100);
    CHECK_INT_EQ(sreq(&s, "GET", res, NULL, NULL, NULL, &r), 403);
    CHECK_STR_EQ(ecode(&r, code, sizeof(code)), "link_expired");
    sresp_free(&r);
    /* Deleted: the link goes with the job. */
    snprintf(moved, sizeof(moved), "/v1/jobs/%s/links", jb);
    CHECK_INT_EQ(sreq(&s, "POST", moved, hb, "application/json", "{}", &lr), 200);
    link_of(&lr, "result", res, sizeof(res));
    sresp_free(&lr);
    CHECK_INT_EQ(sreq(&s, "GET", res, NULL, NULL, NULL, NULL), 200);
    snprintf(moved, sizeof(moved), "/v1/jobs/%s", jb);
    CHECK_INT_EQ(sreq(&s, "DELETE", moved, hb, NULL, NULL, NULL), 204);
    CHECK_INT_EQ(sreq(&s, "GET", res, NULL, NULL, NULL, NULL), 403);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}
